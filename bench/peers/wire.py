"""Client transports of the peer race, standard library only: JSON-RPC over a
WebSocket on a Unix socket (sessiond and the bare jsonrpsee server), JSON-RPC as
lines over a child's stdio (Codex app-server, the ACP agent), HTTP/1.1 keep-alive
(opencode) and tmux control mode."""

import base64
import http.client
import json
import os
import socket
import struct
import subprocess


class WsUnix:
    """One WebSocket connection over a Unix socket, with JSON-RPC calls on it."""

    def __init__(self, path, timeout=60.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n" % key
            ).encode()
        )
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed during the upgrade")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError("no upgrade: %r" % head[:80])
        self.next_id = 0
        self.notes = []
        self.early = {}

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _send_frame(self, opcode, data):
        mask = os.urandom(4)
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        # Masking with a zero-cost XOR over ints keeps large frames cheap.
        m = int.from_bytes(mask * ((n + 3) // 4), "big") >> (8 * (-n % 4)) if n else 0
        body = (int.from_bytes(data, "big") ^ m).to_bytes(n, "big") if n else b""
        self.sock.sendall(head + mask + body)

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk

    def recv_message(self):
        parts = []
        while True:
            self._need(2)
            b0, b1 = self.buf[0], self.buf[1]
            n, off = b1 & 0x7F, 2
            if n == 126:
                self._need(4)
                n, off = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127:
                self._need(10)
                n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
            self._need(off + n)
            payload, self.buf = self.buf[off : off + n], self.buf[off + n :]
            opcode = b0 & 0x0F
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode == 0x8:
                raise ConnectionError("closed by the server")
            if opcode == 0xA:
                continue
            parts.append(payload)
            if b0 & 0x80:
                return b"".join(parts)

    def send(self, method, params=None):
        """Sends a request and returns its id (for pipelining)."""
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            msg["params"] = params
        self._send_frame(0x1, json.dumps(msg).encode())
        return self.next_id

    def wait(self, rid):
        msg = self.early.pop(rid, None)
        while msg is None:
            got = json.loads(self.recv_message())
            if "method" in got:
                self.notes.append(got)
            elif got.get("id") == rid:
                msg = got
            else:
                self.early[got.get("id")] = got
        if "error" in msg:
            raise RuntimeError("%s" % msg["error"])
        return msg.get("result")

    def call(self, method, params=None):
        return self.wait(self.send(method, params))

    def call_received(self, method, params=None):
        """The reply's bytes, unparsed (nothing else may be in flight on this
        connection, and no subscription open)."""
        self.send(method, params)
        return self.recv_message()


class StdioRpc:
    """JSON-RPC 2.0 as one JSON object per line over a child's stdin and stdout."""

    def __init__(self, argv, env, cwd, stderr):
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            cwd=cwd,
        )
        self.next_id = 0
        self.notes = 0

    def send(self, method, params=None, notify=False):
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        if not notify:
            self.next_id += 1
            msg["id"] = self.next_id
        self.proc.stdin.write(json.dumps(msg).encode() + b"\n")
        self.proc.stdin.flush()
        return msg.get("id")

    def wait(self, rid):
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise ConnectionError("the peer closed its stdout")
            msg = json.loads(line)
            if msg.get("id") == rid and "method" not in msg:
                if "error" in msg:
                    raise RuntimeError("%s" % msg["error"])
                return msg.get("result")
            if "method" in msg and "id" in msg:
                # A request from the peer (e.g. a permission); decline it.
                reply = {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "not supported"}}
                self.proc.stdin.write(json.dumps(reply).encode() + b"\n")
                self.proc.stdin.flush()
            self.notes += 1

    def call(self, method, params=None):
        return self.wait(self.send(method, params))

    def call_received(self, method, params=None):
        """The reply's line, unparsed (lines before it that are not a result, such as
        notifications, are skipped)."""
        self.send(method, params)
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise ConnectionError("the peer closed its stdout")
            if b'"result"' in line or b'"error"' in line:
                return line


class Http:
    """HTTP/1.1 with keep-alive to a loopback port, JSON bodies."""

    def __init__(self, port, timeout=60.0):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"} if data is not None else {}
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        if resp.status >= 400:
            raise RuntimeError("HTTP %d: %r" % (resp.status, raw[:200]))
        return json.loads(raw) if raw else None

    def request_received(self, method, path):
        """The reply's body, unparsed."""
        self.conn.request(method, path)
        resp = self.conn.getresponse()
        raw = resp.read()
        if resp.status >= 400:
            raise RuntimeError("HTTP %d: %r" % (resp.status, raw[:200]))
        return raw

    def close(self):
        self.conn.close()


class TmuxControl:
    """A tmux control-mode client (`tmux -C`): one command, one %begin/%end block."""

    def __init__(self, argv, env):
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        self.outputs = []

    def _block(self):
        lines, inside = [], False
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise ConnectionError("tmux control client ended")
            if line.startswith(b"%begin"):
                inside = True
            elif line.startswith(b"%end") or line.startswith(b"%error"):
                if line.startswith(b"%error"):
                    raise RuntimeError(b"".join(lines).decode(errors="replace"))
                return lines
            elif inside:
                lines.append(line)
            elif line.startswith(b"%output"):
                self.outputs.append(line)

    def first_answer(self):
        return self._block()

    def call(self, command):
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()
        return self._block()

    def wait_output(self, needle):
        for line in self.outputs:
            if needle in line:
                self.outputs.clear()
                return line
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise ConnectionError("tmux control client ended")
            if line.startswith(b"%output") and needle in line:
                return line


def rss_kib(pid, key="VmRSS:"):
    """`key` of /proc/PID/status (VmRSS, RssAnon) of `pid` and all its descendants, in KiB."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith(key):
                        total += int(line.split()[1])
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                todo.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            pass
    return total
