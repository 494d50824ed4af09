#!/usr/bin/env python3
"""The peer race: sessiond against the programs people would use instead, driven by
this one client with the same operations in the same run, interleaved (per round,
every peer does one figure before any peer does the next, in a rotating order).
Prints one Markdown table with each peer's figure and sessiond's ratio to the best.

Usage: race.py --peers-dir DIR --sessiond BIN --bare BIN [--rounds 3] [--ops 200]
               [--stored 10000] [--only NAME,...] [--figures spawn,rss,...]
A peer whose program is not in the peers dir (see install.sh) is reported missing."""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import Acp, Bare, Codex, OpenCode, Sessiond, Tmux  # noqa: E402
from wire import rss_kib  # noqa: E402

FIGURES = [
    ("create", "durable create p50, ms (200 sequential)"),
    ("list200", "list with 200 sessions p50, ms"),
    ("list1000", "list of 1,000 rows, {stored} stored, p50, ms"),
    ("spawn", "spawn to first answer, fresh data dir, ms"),
    ("stop", "graceful stop with {stored} live sessions, ms"),
    ("prompt", "prompt to the echo reply p50, ms"),
    ("rss", "RSS idle after start, MiB"),
    ("anon", "of which anonymous (RssAnon), MiB"),
    ("roundtrip", "round trip p50, ms"),
]


def p50(xs):
    return statistics.median(xs) if xs else None


def timed(fn, n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def make_peers(args):
    d = args.peers_dir
    found = []
    missing = []

    def have(path):
        return path and os.path.isfile(path) and os.access(path, os.X_OK)

    found.append(Sessiond(args.sessiond, "power"))
    found.append(Sessiond(args.sessiond, "crash"))
    found.append(Bare(args.bare)) if have(args.bare) else missing.append("bare jsonrpsee")
    codex = os.path.join(d, "node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex")
    found.append(Codex(codex)) if have(codex) else missing.append("Codex app-server")
    oc = os.path.join(d, "node_modules/opencode-ai/bin/opencode.exe")
    found.append(OpenCode(oc)) if have(oc) else missing.append("opencode")
    tmux = shutil.which("tmux")
    found.append(Tmux(tmux)) if tmux else missing.append("tmux")
    acp = os.path.join(d, "acp/bin/simple_agent_v2")
    found.append(Acp(acp)) if have(acp) else missing.append("ACP agent")
    if args.only:
        keep = args.only.split(",")
        found = [p for p in found if any(k in p.name for k in keep)]
    return found, missing


def run_round(peers, r, args, results, failures):
    order = peers[r % len(peers):] + peers[: r % len(peers)]
    works = {}
    live = []
    # Spawn, idle memory.
    for p in order:
        works[p.name] = tempfile.mkdtemp(prefix="race-", dir=args.tmp)
        try:
            spawned = p.start(works[p.name])
            if "spawn" in p.methods:
                results[p.name]["spawn"].append(spawned)
            live.append(p)
        except Exception as e:  # a peer that breaks is reported, the race goes on
            failures.setdefault(p.name, "start: %s" % e)
    time.sleep(1.0)
    for p in live:
        if "rss" in p.methods:
            results[p.name]["rss"].append(rss_kib(p.pid) / 1024.0)
            results[p.name]["anon"].append(rss_kib(p.pid, "RssAnon:") / 1024.0)

    def each(op, fn):
        if args.figures and op not in args.figures:
            return
        for p in list(live):
            if op not in p.methods:
                continue
            try:
                fn(p)
            except Exception as e:
                failures.setdefault(p.name, "%s: %s" % (op, e))
                if args.verbose:
                    traceback.print_exc()
                live.remove(p)

    each("roundtrip", lambda p: results[p.name]["roundtrip"].extend(timed(p.roundtrip, args.ops)))
    each("create", lambda p: results[p.name]["create"].extend(timed(p.create, args.ops)))
    each("list200", lambda p: results[p.name]["list200"].extend(timed(p.list200, args.ops)))

    def prompt(p):
        p.prompt_setup()
        results[p.name]["prompt"].extend(timed(p.prompt, args.ops))

    each("prompt", prompt)
    each("stop", lambda p: p.fill(args.stored))

    def stop(p):
        results[p.name]["stop"].append(p.stop())

    each("stop", stop)

    def stored(p):
        p.restart()
        results[p.name]["list1000"].extend(timed(p.list1000, args.ops))

    each("list1000", stored)
    for p in order:
        try:
            p.close()
        except Exception:
            pass
        shutil.rmtree(works[p.name], ignore_errors=True)


def fmt(v, key):
    if v is None:
        return "n/a"
    if key in ("rss", "anon"):
        return "%.1f" % v
    v *= 1000.0
    return "%.3f" % v if v < 1 else ("%.2f" % v if v < 100 else "%.0f" % v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers-dir", required=True)
    ap.add_argument("--sessiond", required=True)
    ap.add_argument("--bare", default="")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ops", type=int, default=200)
    ap.add_argument("--stored", type=int, default=10000)
    ap.add_argument("--only", default="")
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--figures", default="",
                    help="only these figures, e.g. spawn,rss (spawn and RSS are always taken)")
    args = ap.parse_args()
    args.figures = [f for f in args.figures.split(",") if f]
    peers, missing = make_peers(args)
    results = {p.name: {k: [] for k, _ in FIGURES} for p in peers}
    failures = {}
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = os.getloadavg()
    for r in range(args.rounds):
        print("round %d of %d" % (r + 1, args.rounds), file=sys.stderr)
        run_round(peers, r, args, results, failures)
    names = [p.name for p in peers]
    print("peer race, %s, %d rounds, %d operations each, load average at start %.2f %.2f %.2f"
          % (started, args.rounds, args.ops, *load))
    print()
    print("| figure | " + " | ".join(names) + " | best peer | sessiond (power) / best |")
    print("|---|" + "---:|" * (len(names) + 2))
    for key, label in FIGURES:
        label = label.format(stored="{:,}".format(args.stored))
        vals = {}
        for n in names:
            xs = results[n][key]
            vals[n] = (max(xs) if key in ("rss", "anon") else p50(xs)) if xs else None
        peers_only = {n: v for n, v in vals.items() if v is not None and not n.startswith("sessiond")}
        if key == "roundtrip":
            peers_only = {n: v for n, v in peers_only.items() if n == "bare jsonrpsee"}
        best = min(peers_only.items(), key=lambda kv: kv[1]) if peers_only else None
        mine = vals.get("sessiond (power)")
        ratio = "%.2fx" % (mine / best[1]) if best and mine else "n/a"
        cells = [fmt(vals[n], key) for n in names]
        print("| %s | %s | %s | %s |" % (label, " | ".join(cells),
                                         ("%s %s" % (best[0], fmt(best[1], key))) if best else "n/a", ratio))
    print()
    for p in peers:
        print("- %s: %s" % (p.name, "; ".join("%s = %s" % kv for kv in p.methods.items())))
    for n in missing:
        print("- %s: missing (not installed; see bench/peers/install.sh)" % n)
    for n, why in failures.items():
        print("- %s failed during %s" % (n, why))
    print("\nRSS is the largest of the rounds; every other figure is the median over all rounds.")
    print("The stop and stored-list figures use %d sessions." % args.stored)


if __name__ == "__main__":
    main()
