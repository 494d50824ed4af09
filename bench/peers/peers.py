"""The contestants of the peer race: sessiond, the bare jsonrpsee server, Codex
app-server, opencode, tmux and the ACP reference agent, each behind the same small
interface. An operation a peer has no equivalent for is None (reported as n/a)."""

import os
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from wire import Http, StdioRpc, TmuxControl, WsUnix

CWD = "/tmp"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_exit(proc, timeout=120.0):
    """Seconds until `proc` exits, to the wakeup: a blocking wait (Popen.wait with a
    timeout polls with sleeps of up to 50 ms, which rounds a stop up by tens of ms);
    a process still running after `timeout` is killed and counts as a failure."""
    t = time.perf_counter()
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        proc.wait()
    finally:
        timer.cancel()
    took = time.perf_counter() - t
    if took >= timeout:
        raise RuntimeError("did not exit within %.0f s" % timeout)
    return took


def retry_until(fn, deadline_s=120.0):
    end = time.monotonic() + deadline_s
    while True:
        try:
            return fn()
        except (OSError, ConnectionError, RuntimeError, ValueError):
            if time.monotonic() > end:
                raise
            time.sleep(0.0005)


class Peer:
    """Base: `methods` names what each operation calls on this peer."""

    name = "?"
    methods = {}
    pid = None

    def start(self, work):
        raise NotImplementedError

    def close(self):
        pass


class Sessiond(Peer):
    def __init__(self, binary, durability):
        self.binary = binary
        self.durability = durability
        self.name = "sessiond (%s)" % durability
        self.methods = {
            "create": "session/new (committed before the reply)",
            "list200": "session/list, full SessionInfo objects",
            "list200recv": "session/list, reply bytes only",
            "list1000": "session/list limit 1000, 10,000 stored, none live",
            "spawn": "sessiond serve until daemon/status answers",
            "stop": "SIGTERM until exit",
            "prompt": "session/prompt wait:true, echo agent",
            "rss": "VmRSS after start",
            "roundtrip": "daemon/status",
        }

    def start(self, work):
        self.work = work
        self.sock = os.path.join(work, "s.sock")
        cfg = os.path.join(work, "config.toml")
        with open(cfg, "w") as f:
            f.write(
                'socket = "%s"\ndata_dir = "%s"\nlog = "warn"\nmax_live_sessions = 20000\n'
                'durability = "%s"\n' % (self.sock, os.path.join(work, "data"), self.durability)
            )
        return self._spawn()

    def _spawn(self):
        t = time.perf_counter()
        self.proc = subprocess.Popen(
            [self.binary, "--config", os.path.join(self.work, "config.toml"), "serve"],
            stdin=subprocess.DEVNULL,
            stderr=open(os.path.join(self.work, "log"), "a"),
        )
        self.c = retry_until(lambda: WsUnix(self.sock))
        self.c.call("daemon/status")
        self.pid = self.proc.pid
        return time.perf_counter() - t

    def create(self):
        return self.c.call("session/new", {"keep_siblings": True})["session"]["session_id"]

    def list200(self):
        return len(self.c.call("session/list", {"limit": 1000})["sessions"])

    def list200_received(self):
        return len(self.c.call_received("session/list", {"limit": 1000}))

    def list1000(self):
        return len(self.c.call("session/list", {"limit": 1000})["sessions"])

    def prompt_setup(self):
        self.prompt_sid = self.create()

    def prompt(self):
        v = self.c.call("session/prompt", {"session_id": self.prompt_sid, "text": "hello", "wait": True})
        assert v["content"] == "hello", v

    def roundtrip(self):
        self.c.call("daemon/status")

    def fill(self, n):
        """Creates sessions until `n` exist, 256 requests in flight."""
        have = self.c.call("daemon/status").get("sessions_total") or 0
        todo, inflight = n - have, []
        while todo > 0 or inflight:
            while todo > 0 and len(inflight) < 256:
                inflight.append(self.c.send("session/new", {"keep_siblings": True}))
                todo -= 1
            self.c.wait(inflight.pop(0))

    def stop(self):
        self.c.close()
        self.proc.send_signal(signal.SIGTERM)
        return wait_exit(self.proc)

    def restart(self):
        return self._spawn()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Bare(Peer):
    """The bare jsonrpsee server of the tests crate: round trips only."""

    name = "bare jsonrpsee"
    methods = {"roundtrip": "daemon/status returning {ok:true}"}

    def __init__(self, binary):
        self.binary = binary

    def start(self, work):
        sock = os.path.join(work, "bare.sock")
        t = time.perf_counter()
        self.proc = subprocess.Popen([self.binary, sock])
        self.c = retry_until(lambda: WsUnix(sock))
        self.c.call("daemon/status")
        self.pid = self.proc.pid
        return time.perf_counter() - t

    def roundtrip(self):
        self.c.call("daemon/status")

    def close(self):
        self.proc.kill()
        self.proc.wait()


class Acp(Peer):
    """The `agent-client-protocol` crate's example echo agent (protocol v2), in memory."""

    name = "ACP agent"
    methods = {
        "create": "session/new (in memory)",
        "list200": "session/list (id, cwd, title)",
        "list200recv": "session/list, reply line only",
        "spawn": "initialize answered",
        "stop": "stdin closed until exit",
        "prompt": "session/prompt, echo",
        "rss": "VmRSS after initialize",
    }

    def __init__(self, binary):
        self.binary = binary

    def start(self, work):
        t = time.perf_counter()
        self.rpc = StdioRpc([self.binary], dict(os.environ), work, subprocess.DEVNULL)
        # Protocol v2 names the client in `info` (required) and its `capabilities`.
        self.rpc.call(
            "initialize",
            {"protocolVersion": 2, "info": {"name": "sessiond-race", "version": "0"}, "capabilities": {}},
        )
        self.pid = self.rpc.proc.pid
        return time.perf_counter() - t

    def create(self):
        return self.rpc.call("session/new", {"cwd": CWD, "mcpServers": []})["sessionId"]

    def list200(self):
        return len(self.rpc.call("session/list", {})["sessions"])

    def list200_received(self):
        return len(self.rpc.call_received("session/list", {}))

    def prompt_setup(self):
        self.prompt_sid = self.create()

    def prompt(self):
        self.rpc.call(
            "session/prompt",
            {"sessionId": self.prompt_sid, "prompt": [{"type": "text", "text": "hello"}]},
        )

    def fill(self, n):
        have = self.list200()
        for _ in range(n - have):
            self.create()

    def stop(self):
        self.rpc.proc.stdin.close()
        return wait_exit(self.rpc.proc)

    def close(self):
        if self.rpc.proc.poll() is None:
            self.rpc.proc.kill()
            self.rpc.proc.wait()


class Codex(Peer):
    """Codex app-server over stdio, offline: every URL points at a closed loopback port."""

    name = "Codex app-server"
    methods = {
        "create": "thread/start",
        "list200": "thread/loaded/list (ids only)",
        "list200recv": "thread/loaded/list, reply line only",
        "spawn": "app-server until initialize answers",
        "rss": "VmRSS after initialize",
    }
    FLAGS = ["--disable", "plugins", "--disable", "remote_plugin", "--disable", "apps", "--disable", "shell_snapshot"]
    CONFIG = """model = "gpt-5"
model_provider = "loopback"
chatgpt_base_url = "http://127.0.0.1:9/"
openai_base_url = "http://127.0.0.1:9/v1"
check_for_update_on_startup = false
[model_providers.loopback]
name = "loopback"
base_url = "http://127.0.0.1:9/v1"
wire_api = "responses"
[analytics]
enabled = false
[feedback]
enabled = false
[otel]
exporter = "none"
"""

    def __init__(self, binary):
        self.binary = binary

    def start(self, work):
        home = os.path.join(work, "codex-home")
        os.makedirs(home, exist_ok=True)
        with open(os.path.join(home, "config.toml"), "w") as f:
            f.write(self.CONFIG)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "CODEX_HOME": home}
        t = time.perf_counter()
        self.rpc = StdioRpc(
            [self.binary, "app-server"] + self.FLAGS, env, work, open(os.path.join(work, "codex.log"), "w")
        )
        self.rpc.call("initialize", {"clientInfo": {"name": "bench", "version": "0"}})
        self.pid = self.rpc.proc.pid
        elapsed = time.perf_counter() - t
        self.rpc.send("initialized", notify=True)
        return elapsed

    def create(self):
        return self.rpc.call("thread/start", {"cwd": CWD})["thread"]["id"]

    def list200(self):
        return len(self.rpc.call("thread/loaded/list", {})["data"])

    def list200_received(self):
        return len(self.rpc.call_received("thread/loaded/list", {}))

    def close(self):
        if self.rpc.proc.poll() is None:
            self.rpc.proc.kill()
            self.rpc.proc.wait()


class OpenCode(Peer):
    """`opencode serve` on a loopback port, offline through its OPENCODE_DISABLE_* switches."""

    name = "opencode"
    methods = {
        "create": "POST /session",
        "list200": "GET /session",
        "list200recv": "GET /session, body only",
        "list1000": "GET /session?limit=1000 after a restart",
        "spawn": "opencode serve until GET /session answers",
        "stop": "SIGTERM until exit",
        "rss": "VmRSS after the first answer",
    }
    SWITCHES = [
        "AUTOUPDATE", "MODELS_FETCH", "DEFAULT_PLUGINS", "LSP_DOWNLOAD", "SHARE",
        "CLAUDE_CODE", "EXTERNAL_SKILLS", "EMBEDDED_WEB_UI", "AUTOCOMPACT", "PRUNE",
    ]

    def __init__(self, binary):
        self.binary = binary

    def start(self, work):
        home = os.path.join(work, "opencode-home")
        os.makedirs(home, exist_ok=True)
        self.env = {
            "PATH": "/usr/bin:/bin",
            "HOME": home,
            "XDG_DATA_HOME": os.path.join(home, "data"),
            "XDG_CONFIG_HOME": os.path.join(home, "config"),
            "XDG_CACHE_HOME": os.path.join(home, "cache"),
            "XDG_STATE_HOME": os.path.join(home, "state"),
        }
        for s in self.SWITCHES:
            self.env["OPENCODE_DISABLE_" + s] = "1"
        self.work = work
        # An empty project directory of its own: nothing for it to scan.
        self.project = os.path.join(work, "project")
        os.makedirs(self.project, exist_ok=True)
        return self._spawn()

    def _spawn(self):
        self.port = free_port()
        t = time.perf_counter()
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--port", str(self.port), "--hostname", "127.0.0.1"],
            env=self.env,
            cwd=self.project,
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.work, "opencode.log"), "a"),
        )

        def first():
            h = Http(self.port)
            h.request("GET", "/session")
            return h

        self.h = retry_until(first)
        self.pid = self.proc.pid
        return time.perf_counter() - t

    def create(self):
        return self.h.request("POST", "/session", {})["id"]

    def list200(self):
        return len(self.h.request("GET", "/session"))

    def list200_received(self):
        return len(self.h.request_received("GET", "/session"))

    def list1000(self):
        return len(self.h.request("GET", "/session?limit=1000"))

    def fill(self, n):
        have = len(self.h.request("GET", "/session"))

        def batch(k):
            h = Http(self.port)
            for _ in range(k):
                h.request("POST", "/session", {})
            h.close()

        todo = max(0, n - have)
        with ThreadPoolExecutor(8) as ex:
            list(ex.map(batch, [todo // 8 + (1 if i < todo % 8 else 0) for i in range(8)]))

    def stop(self):
        self.h.close()
        self.proc.send_signal(signal.SIGTERM)
        return wait_exit(self.proc)

    def restart(self):
        return self._spawn()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Tmux(Peer):
    """A tmux server on its own socket, driven by one control-mode client (`tmux -C`)."""

    name = "tmux"
    methods = {
        "create": "new-session -d (a shell per session, nothing stored)",
        "list200": "list-sessions -F with 5 fields",
        "list200recv": "the same (text lines, nothing to parse)",
        "spawn": "tmux -C new-session until its first %end",
        "prompt": "send-keys to `cat` until its %output",
        "rss": "VmRSS of the server after start",
    }

    def __init__(self, binary):
        self.binary = binary

    def start(self, work):
        self.sock = os.path.join(work, "tmux.sock")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": work, "TERM": "xterm", "SHELL": "/bin/sh"}
        t = time.perf_counter()
        self.ctl = TmuxControl(
            [self.binary, "-S", self.sock, "-f", "/dev/null", "-C", "new-session", "-s", "echo",
             "sh -c 'stty -echo; exec cat'"],
            env,
        )
        self.ctl.first_answer()
        elapsed = time.perf_counter() - t
        pid = self.ctl.call("display-message -p '#{pid}'")
        self.pid = int(pid[0].strip())
        return elapsed

    def create(self):
        return self.ctl.call("new-session -d")

    def list200(self):
        return len(self.ctl.call(
            "list-sessions -F '#{session_id} #{session_name} #{session_created} #{session_windows} #{session_attached}'"))

    def list200_received(self):
        return self.list200()

    def prompt_setup(self):
        self.ctl.outputs.clear()

    def prompt(self):
        self.ctl.call("send-keys -t echo hello Enter")
        self.ctl.wait_output(b"hello")

    def close(self):
        subprocess.run([self.binary, "-S", self.sock, "kill-server"], stderr=subprocess.DEVNULL)
        self.ctl.proc.kill()
        self.ctl.proc.wait()
