#!/usr/bin/env python3
"""Time figures the integration tests no longer assert.

The tests in tests/ assert events, never durations (DESIGN.md §7): a timeout is proved by its
408 or its close, a busy loop cannot be seen without a clock, and on a loaded 2-core machine
any bound on elapsed time fails for no fault of the server. The durations themselves are still
worth knowing, so this script measures them and prints them next to the bound the old timed
tests used. It asserts nothing; read the figures.

What it does: for each scenario it starts a fresh server (the binary from --bin) in a
temporary directory with its own root and database, `--quiet --addr 127.0.0.1:0` plus the
scenario's flags, drives it over loopback (127.0.0.1 only), and stops it. Every wait is
bounded; the whole run takes about half a minute.

Scenarios (`--only a,b` picks some):
  header      --header-timeout 0.5 / 0.3: a head trickled a byte every 50 ms until 408; a
              connection that sends nothing until it is closed; after 1 s idle on a
              keep-alive connection, a partial head until 408 (from its first byte); the
              latency of a normal GET while a head trickles and while 50 heads wait
  keepalive   --keep-alive-timeout 0.3: from the response to the close
  body        --body-timeout 0.3: a stalled body until 408
  write       --write-timeout 0.5: 20 pipelined 3 MiB downloads never read, until the
              server lets go of the connection (kernel table, /proc/net/tcp)
  limits      CPU ticks the server uses in 0.8 s while a fifth client waits at
              --max-connections 4, and in 1 s while it is out of descriptors (prlimit
              --nofile=32, 60 connections); then how long until a new client is served
  shutdown    SIGTERM: with --shutdown-timeout 0.5 and a download that is never read, until
              exit; with --shutdown-timeout 8 and a download read to the end, until exit;
              with two chat streams open, until exit
  concurrency 500 connections at once, until all have their response
  chat        --sse-heartbeat 0.3: heartbeat comments on an idle stream for 1.6 s (count,
              longest gap); the latency of a HEAD on the stream
  session     --session-ttl 2: from login until GET /api/auth/me says 401
  files       file cache freshness: a changed file, a file created after a 404 and a deleted
              file, from the change until a response shows it
  tls         --header-timeout 0.5 on HTTPS: a connection that sends nothing, one that sends
              20 bytes of a ClientHello, and a head that never ends (408 over TLS)

    cargo build --release
    benches/load/timing.py [--bin PATH] [--only a,b]
"""
import argparse
import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
CLK_TCK = os.sysconf("SC_CLK_TCK")
IO_TIMEOUT = 5.0


def default_bin():
    for profile in ("release", "debug"):
        path = REPO / "target" / profile / "looplight"
        if path.exists():
            return path
    return REPO / "target" / "release" / "looplight"


class Server:
    """A looplight process on 127.0.0.1 with a temporary root and database."""

    def __init__(self, binary, args=(), files=None, nofile=None, tls=False):
        self.dir = Path(tempfile.mkdtemp(prefix="looplight-timing-"))
        self.root = self.dir / "www"
        self.root.mkdir()
        files = files or {}
        files.setdefault("hello.txt", b"Hello world\n")
        for name, content in files.items():
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        argv = [str(binary), "--addr", "127.0.0.1:0", "--quiet", "--root", str(self.root),
                "--db", str(self.dir / "looplight.db"), *args]
        if tls:
            argv += ["--tls-self-signed", "--tls-addr", "127.0.0.1:0"]
        if nofile:
            argv = ["prlimit", f"--nofile={nofile}:{nofile}", *argv]
        self.err = open(self.dir / "stderr.log", "wb")
        self.proc = subprocess.Popen(argv, bufsize=0, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.err, cwd=self.dir)
        self.pid = self.proc.pid
        self.port = self._announced("http")
        self.tls_port = self._announced("https") if tls else None

    def _announced(self, scheme):
        deadline = time.monotonic() + 10
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                self.stop()
                raise RuntimeError(f"server did not announce its {scheme} address")
            byte = self.proc.stdout.read(1)
            if not byte:
                self.stop()
                raise RuntimeError("server exited at start: "
                                   + (self.dir / "stderr.log").read_text(errors="replace"))
            line += byte
        match = re.search(rf"listening on {scheme}://127\.0\.0\.1:(\d+)", line.decode())
        if not match:
            raise RuntimeError(f"unexpected line {line!r}")
        return int(match.group(1))

    def connect(self, port=None):
        sock = socket.create_connection(("127.0.0.1", port or self.port), timeout=IO_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def cpu_ticks(self):
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime

    def open_fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.err.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------------------
# A small HTTP client
# ---------------------------------------------------------------------------

def get(path, close=False, method="GET", headers=""):
    conn = "Connection: close\r\n" if close else ""
    return f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}{conn}\r\n".encode()


def read_response(sock, head_only=False):
    """(status, headers dict, body) of one Content-Length response."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError(f"closed before the head: {data[:200]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if head_only else int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("closed in the body")
        body += chunk
    return status, headers, body[:length]


def request(server, path, method="GET", body=None, token=None, port=None):
    sock = server.connect(port)
    try:
        extra = ""
        if token:
            extra += f"Authorization: Bearer {token}\r\n"
        payload = b""
        if body is not None:
            payload = json.dumps(body).encode()
            extra += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        sock.sendall(get(path, close=True, method=method, headers=extra) + payload)
        return read_response(sock, head_only=method == "HEAD")
    finally:
        sock.close()


def until_closed(sock, limit=IO_TIMEOUT):
    """Reads until EOF or reset; returns the bytes, or None if still open after `limit`."""
    got = b""
    deadline = time.monotonic() + limit
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return got
        except (socket.timeout, TimeoutError):
            return None
        if not chunk:
            return got
        got += chunk


def poll_until(cond, limit=20.0, every=0.005):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(every)
    return None


def tcp_entry(local, remote):
    """(state, inode) of the socket local -> remote in /proc/net/tcp, or None."""
    def fmt(addr):
        ip = socket.inet_aton(addr[0])
        return f"{int.from_bytes(ip, sys.byteorder):08X}:{addr[1]:04X}"
    want = (fmt(local), fmt(remote))
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            f = line.split()
            if (f[1], f[2]) == want:
                return int(f[3], 16), int(f[9])
    return None


def server_holds(port, client_sock):
    """Whether the server has accepted the connection and not closed it (a socket still in
    the accept queue, like one the server closed, has no inode)."""
    entry = tcp_entry(("127.0.0.1", port), client_sock.getsockname())
    return entry is not None and entry[1] != 0


def ms(seconds):
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


ROWS = []


def row(scenario, what, figure, old_bound):
    ROWS.append((scenario, what, figure, old_bound))
    print(f"{scenario:<12} {what:<62} {figure:>12}   (old test: {old_bound})", flush=True)


# ---------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------

def scenario_header(binary):
    with Server(binary, ["--header-timeout", "0.5"]) as s:
        slow = s.connect()
        start = time.monotonic()
        slow.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        slow.setblocking(False)
        other_latency = None
        got = b""
        while time.monotonic() - start < IO_TIMEOUT:
            try:
                chunk = slow.recv(65536)
                if not chunk:
                    break
                got += chunk
                if b"\r\n\r\n" in got:
                    break
            except BlockingIOError:
                pass
            try:
                slow.send(b"a")
            except OSError:
                pass
            if other_latency is None and time.monotonic() - start >= 0.1:
                t = time.monotonic()
                request(s, "/hello.txt")
                other_latency = time.monotonic() - t
            time.sleep(0.05)
        took = time.monotonic() - start if got.startswith(b"HTTP/1.1 408") else None
        slow.close()
        row("header", "trickled head (0.5 s timeout): 408 after", ms(took), "0.4-2.5 s")
        row("header", "a normal GET while it trickles", ms(other_latency), "< 1 s")

    with Server(binary, ["--header-timeout", "0.3"]) as s:
        c = s.connect()
        start = time.monotonic()
        closed = until_closed(c)
        row("header", "silent connection (0.3 s timeout): closed after",
            ms(None if closed is None else time.monotonic() - start), "0.25-2.5 s")
        c.close()

    with Server(binary, ["--header-timeout", "0.5", "--keep-alive-timeout", "5"]) as s:
        c = s.connect()
        c.sendall(get("/hello.txt"))
        read_response(c)
        time.sleep(1.0)  # the scenario: an idle keep-alive pause longer than the timeout
        start = time.monotonic()
        c.sendall(b"GET /hello.txt HTTP/1.1\r\n")
        status = read_response(c)[0]
        row("header", "partial head after 1 s idle (0.5 s timeout): 408 after",
            ms(time.monotonic() - start if status == 408 else None), "0.4-2.5 s")
        c.close()

    with Server(binary) as s:
        slow = [s.connect() for _ in range(50)]
        for c in slow:
            c.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n")
        t = time.monotonic()
        request(s, "/hello.txt")
        row("header", "a normal GET while 50 heads wait", ms(time.monotonic() - t), "< 1 s")
        for c in slow:
            c.close()


def scenario_keepalive(binary):
    with Server(binary, ["--keep-alive-timeout", "0.3"]) as s:
        c = s.connect()
        c.sendall(get("/hello.txt"))
        read_response(c)
        start = time.monotonic()
        closed = until_closed(c)
        row("keepalive", "idle keep-alive (0.3 s timeout): closed after",
            ms(None if closed is None else time.monotonic() - start), "0.2-2.5 s")
        c.close()


def scenario_body(binary):
    with Server(binary, ["--body-timeout", "0.3"]) as s:
        c = s.connect()
        c.sendall(b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nabc")
        start = time.monotonic()
        status = read_response(c)[0]
        row("body", "stalled body (0.3 s timeout): 408 after",
            ms(time.monotonic() - start if status == 408 else None), "0.25-2.5 s")
        c.close()


def scenario_write(binary):
    big = os.urandom(3 * 1024 * 1024)
    with Server(binary, ["--write-timeout", "0.5"], files={"big.bin": big}) as s:
        c = s.connect()
        c.sendall(b"".join(get("/big.bin") for _ in range(20)))
        start = time.monotonic()
        poll_until(lambda: server_holds(s.port, c), limit=10)
        released = poll_until(lambda: not server_holds(s.port, c), limit=10)
        row("write", "client not reading (0.5 s timeout): dropped after",
            ms(time.monotonic() - start if released else None), "closed by 2.5 s")
        c.close()


def scenario_limits(binary):
    with Server(binary, ["--max-connections", "4"]) as s:
        held = []
        for _ in range(4):
            c = s.connect()
            c.sendall(get("/hello.txt"))
            read_response(c)
            held.append(c)
        fifth = s.connect()
        fifth.sendall(get("/hello.txt", close=True))
        before = s.cpu_ticks()
        time.sleep(0.8)  # the measurement window
        used = s.cpu_ticks() - before
        row("limits", f"CPU at --max-connections 4 for 0.8 s (1 tick = {1000 // CLK_TCK} ms)",
            f"{used} ticks", "<= 20 ticks")
        for c in held + [fifth]:
            c.close()

    with Server(binary, nofile=32) as s:
        request(s, "/hello.txt")
        conns = [s.connect() for _ in range(60)]
        for c in conns:
            try:
                c.sendall(get("/hello.txt"))
            except OSError:
                pass
        poll_until(lambda: s.open_fds() >= 28, limit=10)
        before = s.cpu_ticks()
        time.sleep(1.0)  # the measurement window
        used = s.cpu_ticks() - before
        row("limits", f"CPU out of descriptors (--nofile 32) for 1 s",
            f"{used} ticks", "<= 30 ticks")
        for c in conns:
            c.close()
        start = time.monotonic()
        status = request(s, "/hello.txt")[0]
        row("limits", "then a new client served after",
            ms(time.monotonic() - start if status == 200 else None), "< 5 s")


def scenario_shutdown(binary):
    big = os.urandom(16 * 1024 * 1024)
    with Server(binary, ["--shutdown-timeout", "0.5"], files={"big.bin": big}) as s:
        stalled = s.connect()
        stalled.sendall(get("/big.bin"))
        stalled.recv(1024)
        s.proc.send_signal(signal.SIGTERM)
        start = time.monotonic()
        code = s.wait_exit(10)
        row("shutdown", "SIGTERM, stalled download (0.5 s grace): exit after",
            ms(time.monotonic() - start if code is not None else None), "0.4-2.5 s")
        stalled.close()

    with Server(binary, ["--shutdown-timeout", "8"], files={"big.bin": big}) as s:
        idle = s.connect()
        idle.sendall(get("/hello.txt"))
        read_response(idle)
        download = s.connect()
        download.sendall(get("/big.bin"))
        got = download.recv(65536)
        s.proc.send_signal(signal.SIGTERM)
        start = time.monotonic()
        idle_closed = until_closed(idle)
        idle_took = time.monotonic() - start if idle_closed is not None else None
        while got:
            got = download.recv(1 << 20)
        download.close()
        code = s.wait_exit(10)
        row("shutdown", "SIGTERM: idle keep-alive connection closed after", ms(idle_took),
            "< 3 s")
        row("shutdown", "SIGTERM, download read to the end (8 s grace): exit after",
            ms(time.monotonic() - start if code is not None else None), "< 8 s")

    with Server(binary, ["--shutdown-timeout", "4"]) as s:
        token = user_token(s, "leaving")
        streams = [open_stream(s, token) for _ in range(2)]
        s.proc.send_signal(signal.SIGTERM)
        start = time.monotonic()
        code = s.wait_exit(10)
        row("shutdown", "SIGTERM with two chat streams open (4 s grace): exit after",
            ms(time.monotonic() - start if code is not None else None), "<= 4.5 s")
        for c in streams:
            c.close()


def scenario_concurrency(binary):
    with Server(binary) as s:
        start = time.monotonic()
        clients = [s.connect() for _ in range(500)]
        for c in clients:
            c.sendall(get("/hello.txt", close=True))
        for c in clients:
            read_response(c)
            c.close()
        row("concurrency", "500 connections at once, all answered after",
            ms(time.monotonic() - start), "< 10 s")


def user_token(server, name):
    request(server, "/api/auth/register", "POST", {"username": name, "password": PASSWORD})
    status, _, body = request(server, "/api/auth/login", "POST",
                              {"username": name, "password": PASSWORD})
    if status != 200:
        raise RuntimeError(f"login: {status} {body!r}")
    return json.loads(body)["token"]


def open_stream(server, token):
    c = server.connect()
    c.sendall(get("/api/chat/stream", headers=f"Authorization: Bearer {token}\r\n"))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(65536)
        if not chunk:
            raise RuntimeError("stream closed before its head")
        data += chunk
    return c


def scenario_chat(binary):
    with Server(binary, ["--sse-heartbeat", "0.3"]) as s:
        token = user_token(s, "idler")
        opened = time.monotonic()
        c = open_stream(s, token)
        times = [opened]
        buf = b""
        until = opened + 1.6
        while True:
            left = until - time.monotonic()
            if left <= 0:
                break
            c.settimeout(left)
            try:
                chunk = c.recv(65536)
            except (socket.timeout, TimeoutError):
                break
            if not chunk:
                break
            buf += chunk
            # Chunked framing around "...\n" lines; a comment line starts with ':'.
            count = buf.count(b"\n:")
            while len(times) - 1 < count:
                times.append(time.monotonic())
        times.append(until)
        gaps = [b - a for a, b in zip(times, times[1:])]
        row("chat", "heartbeats (0.3 s interval) on an idle stream in 1.6 s",
            f"{len(times) - 2}", ">= 3")
        row("chat", "longest gap between heartbeats", ms(max(gaps)), "<= 650 ms")
        c.close()
        t = time.monotonic()
        request(s, "/api/chat/stream", "HEAD", token=token)
        row("chat", "HEAD on the stream answered after", ms(time.monotonic() - t), "< 3 s")


def scenario_session(binary):
    with Server(binary, ["--session-ttl", "2"]) as s:
        request(s, "/api/auth/register", "POST", {"username": "brief", "password": PASSWORD})
        status, _, body = request(s, "/api/auth/login", "POST",
                                  {"username": "brief", "password": PASSWORD})
        logged_in = time.monotonic()
        token = json.loads(body)["token"]
        expired = poll_until(lambda: request(s, "/api/auth/me", token=token)[0] == 401,
                             limit=10, every=0.02)
        row("session", "--session-ttl 2: token refused after",
            ms(time.monotonic() - logged_in if expired else None),
            "valid at 1 s, refused by 3.5 s")


def scenario_files(binary):
    files = {"fresh.txt": b"version one\n", "gone.txt": b"soon gone\n"}
    with Server(binary, files=files) as s:
        request(s, "/fresh.txt")
        (s.root / "fresh.txt").write_bytes(b"version two\n")
        os.utime(s.root / "fresh.txt", (time.time() + 100, time.time() + 100))
        start = time.monotonic()
        ok = poll_until(lambda: request(s, "/fresh.txt")[2] == b"version two\n", limit=10)
        row("files", "changed file served fresh after",
            ms(time.monotonic() - start if ok else None), "<= 1.5 s")

        request(s, "/late.txt")
        (s.root / "late.txt").write_bytes(b"I am late\n")
        start = time.monotonic()
        ok = poll_until(lambda: request(s, "/late.txt")[0] == 200, limit=10)
        row("files", "file created after a 404 served after",
            ms(time.monotonic() - start if ok else None), "<= 1.5 s")

        request(s, "/gone.txt")
        (s.root / "gone.txt").unlink()
        start = time.monotonic()
        ok = poll_until(lambda: request(s, "/gone.txt")[0] == 404, limit=10)
        row("files", "deleted file 404 after",
            ms(time.monotonic() - start if ok else None), "<= 1.5 s")


def client_hello():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    session = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        session.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def scenario_tls(binary):
    with Server(binary, ["--header-timeout", "0.5"], tls=True) as s:
        hello = client_hello()
        for what, prefix in (("nothing sent", b""), ("20 bytes of a ClientHello", hello[:20])):
            c = s.connect(s.tls_port)
            start = time.monotonic()
            if prefix:
                c.sendall(prefix)
            closed = until_closed(c)
            row("tls", f"stalled handshake, {what}: closed after",
                ms(None if closed is None else time.monotonic() - start), "0.4-2 s")
            c.close()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = ctx.wrap_socket(s.connect(s.tls_port), server_hostname="localhost")
        start = time.monotonic()
        c.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n")
        status = read_response(c)[0]
        row("tls", "head that never ends over TLS: 408 after",
            ms(time.monotonic() - start if status == 408 else None), "0.4-2.5 s")
        c.close()


SCENARIOS = {
    "header": scenario_header,
    "keepalive": scenario_keepalive,
    "body": scenario_body,
    "write": scenario_write,
    "limits": scenario_limits,
    "shutdown": scenario_shutdown,
    "concurrency": scenario_concurrency,
    "chat": scenario_chat,
    "session": scenario_session,
    "files": scenario_files,
    "tls": scenario_tls,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default=str(default_bin()), help="the looplight binary")
    parser.add_argument("--only", help="comma-separated scenarios: " + ",".join(SCENARIOS))
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(SCENARIOS)
    for name in names:
        if name not in SCENARIOS:
            parser.error(f"unknown scenario {name!r}")
    args.bin = str(Path(args.bin).resolve())
    print(f"binary: {args.bin}")
    failed = []
    for name in names:
        try:
            SCENARIOS[name](args.bin)
        except Exception as error:  # a figure missing is reported, the others still run
            failed.append(name)
            print(f"{name:<12} FAILED to measure: {error!r}", flush=True)
    if failed:
        sys.exit(f"scenarios that could not be measured: {', '.join(failed)}")


if __name__ == "__main__":
    main()
