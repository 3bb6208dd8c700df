#!/usr/bin/env python3
"""Event-loop isolation: does one client's heavy request stall everyone else?

looplight runs every connection on one thread. Any request that makes that thread work for a
long time (reading a huge file, listing a huge directory, compressing, a slow query, hashing a
password on the loop, ...) delays every other client by the same amount. This script measures
that delay directly, scenario by scenario.

What it does, for each scenario:
  * starts a fresh server (the binary from --bin) in a temporary directory with its own site
    root and database, `--quiet --addr 127.0.0.1:0`, pinned to core 0 with `taskset -c 0` (the
    whole process, helper threads included);
  * warms it up with a few requests for /hello.txt;
  * runs, for --seconds (default 8), the scenario's heavy clients and, next to them, the probe:
    one keep-alive connection fetching GET /hello.txt every 5 ms and timing each request
    (2 s timeout; a timeout is counted, recorded as 2000 ms, and the probe reconnects);
  * stops everything at the deadline (heavy clients are bounded by it and killed if late).
The probe and the heavy clients are separate processes (no GIL between them), all pinned to
core 1; the heavy clients run at nice 10 so that the probe, which sleeps between requests, is
never delayed by its neighbours on that core: what it sees is the server. Traffic goes to
127.0.0.1 only.

Scenarios (`--only a,b` picks some; `alone` always runs first, it is the baseline):
  alone       the probe only
  multirange  2 clients: GET /big.bin (1 GiB sparse file), Range: bytes=0-0,-1 (multipart 206);
              also the server's peak RSS (VmHWM)
  listing     --list-dirs, 4 clients: GET /many/ (30,000 empty files)
  compress    --compress, 4 clients fetch 400 distinct ~200 KB text files once each with
              Accept-Encoding: br (ends early when all are done)
  search      --seed-posts 20000, 6 clients: GET /api/search?q=<word>
  lookups     --seed-posts 20000, 6 clients: GET /api/posts/:id (primary-key lookups)
  writes      6 logged-in clients: POST /api/posts
  downloads   8 clients: GET /64m.bin (64 MiB), whole body read
  logins      4 clients: POST /api/auth/login (argon2 on the helper pool, pinned to core 0 too)
  slowread    slowhttptest -X: 1,000 slow-reading connections on /1m.bin; also the kernel's
              peak TCP memory (pages, /proc/net/sockstat)
  loginburst  memory, not latency: server VmRSS before, at peak and 1/3/5 s after 100 logins
              from 8 parallel clients

Run (needs taskset and at least 2 cores; slowhttptest for `slowread`):

    cargo build --release
    benches/load/isolation.py [--bin PATH] [--seconds N] [--only a,b]

The whole run takes about 10 x (seconds + 3) s plus the set-up of the files.

Reading the output: one line per scenario as it ends, then a table.
  probe p50/p99/max  latency of the probe's requests in ms (timeouts count as 2000 ms);
                     n is the number of probe requests (a stall of S ms costs one sample,
                     not S/5: this is a latency probe, not a throughput test)
  timeouts           probe requests that timed out (2 s); "+Nerr": other probe failures
                     (refused or reset connections, a status other than 200)
  heavy, heavy/s     heavy requests completed in the window, and per second
  errs               heavy requests that failed: non-2xx status, timeout, or connection
                     failure; a request still in flight when the window ends is not an
                     error (the line says how many there were; the table's notes say so
                     when none completed)
  verdict            ok when probe p99 <= max(5 x alone p99, 5 ms), probe max <= 100 ms, no
                     probe timeouts, and the heavy requests still succeed (some done, none
                     failed); FAIL otherwise. This is the goal: every row ok.
A binary that lacks a scenario's flag gets that scenario skipped (the line says so).
"""
import argparse
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SERVER_CPU = 0
CLIENT_CPU = 1
CLIENT_NICE = 10
PROBE_PATH = "/hello.txt"
PROBE_INTERVAL = 0.005
PROBE_TIMEOUT = 2.0
PASSWORD = "isolation-password"
SEARCH_WORDS = ("loop socket epoll buffer request response keepalive pipeline chunked header "
                "latency throughput slab token timer deadline parser sqlite search session "
                "cookie static cache kernel").split()
MP = multiprocessing.get_context("fork")


# ---------------------------------------------------------------------------------------------
# HTTP/1.1 over a raw socket: one keep-alive connection, responses read by their framing.

class Http:
    """One connection to 127.0.0.1:port. Every operation is bounded by an absolute deadline
    (time.monotonic()); past it, socket.timeout is raised."""

    def __init__(self, port, deadline):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=max(0.001, deadline - time.monotonic()))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()          # bytes received but not consumed yet
        self.scratch = bytearray(1 << 20)
        self.open = True

    def close(self):
        self.open = False
        self.sock.close()

    def _recv(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline")
        self.sock.settimeout(remaining)
        n = self.sock.recv_into(self.scratch)
        if n == 0:
            raise ConnectionError("closed by the server")
        return n

    def _need(self, count, deadline):
        while len(self.buf) < count:
            n = self._recv(deadline)
            self.buf += self.scratch[:n]

    def _line(self, deadline):
        while (end := self.buf.find(b"\r\n")) < 0:
            n = self._recv(deadline)
            self.buf += self.scratch[:n]
        line = bytes(self.buf[:end])
        del self.buf[:end + 2]
        return line

    def _body(self, length, keep, deadline):
        """Reads `length` body bytes; returns them if keep, else b""."""
        out = bytearray()
        take = min(length, len(self.buf))
        if keep:
            out += self.buf[:take]
        del self.buf[:take]
        length -= take
        while length > 0:  # large bodies go through scratch without being kept
            n = self._recv(deadline)
            used = min(n, length)
            if keep:
                out += self.scratch[:used]
            if n > used:
                self.buf += self.scratch[used:n]
            length -= used
        return bytes(out)

    def exchange(self, raw_request, deadline, keep_body=False):
        """Sends one request and reads its response: (status, headers, body_bytes, body_len)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline")
        self.sock.settimeout(remaining)
        self.sock.sendall(raw_request)
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            n = self._recv(deadline)
            self.buf += self.scratch[:n]
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[:end + 4]
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ConnectionError(f"bad status line {lines[0]!r}")
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body, size = b"", 0
        if status in (204, 304) or 100 <= status < 200 or raw_request.startswith(b"HEAD "):
            pass
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                chunk_len = int(self._line(deadline).split(b";")[0], 16)
                if chunk_len == 0:
                    while self._line(deadline):  # trailers up to the empty line
                        pass
                    break
                self._need(chunk_len + 2, deadline)
                if keep_body:
                    chunks.append(bytes(self.buf[:chunk_len]))
                del self.buf[:chunk_len + 2]
                size += chunk_len
            body = b"".join(chunks)
        elif "content-length" in headers:
            size = int(headers["content-length"])
            body = self._body(size, keep_body, deadline)
        else:  # delimited by the end of the connection
            chunks = [bytes(self.buf)]
            size = len(self.buf)
            self.buf.clear()
            while True:
                try:
                    n = self._recv(deadline)
                except ConnectionError:
                    break
                size += n
                if keep_body:
                    chunks.append(bytes(self.scratch[:n]))
            body = b"".join(chunks) if keep_body else b""
            self.close()
        if headers.get("connection", "").lower() == "close" and self.open:
            self.close()
        return status, headers, body, size


def raw_request(method, path, headers=None, body=None):
    """The bytes of one HTTP/1.1 request; a dict body is sent as JSON."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    data = b""
    if isinstance(body, dict):
        data = json.dumps(body).encode()
        lines.append("Content-Type: application/json")
    elif body is not None:
        data = body
    if body is not None:
        lines.append(f"Content-Length: {len(data)}")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def api(port, method, path, body=None, token=None, timeout=30):
    """One API call on a fresh connection, from the main process: (status, parsed JSON or None)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + timeout
    conn = Http(port, deadline)
    try:
        status, _, data, _ = conn.exchange(raw_request(method, path, headers, body), deadline,
                                           keep_body=True)
    finally:
        conn.close()
    try:
        return status, json.loads(data) if data else None
    except ValueError:
        return status, None


def register_users(port, count, prefix="user"):
    """Registers `count` users; returns their login bodies. Fails loudly if the server says no."""
    users = []
    for i in range(count):
        user = {"username": f"{prefix}{i}", "password": PASSWORD}
        status, reply = api(port, "POST", "/api/auth/register", user)
        if status != 201:
            raise RuntimeError(f"register {user['username']}: {status} {reply}")
        users.append(user)
    return users


def login(port, user):
    status, reply = api(port, "POST", "/api/auth/login", user)
    if status != 200 or not reply or "token" not in reply:
        raise RuntimeError(f"login {user['username']}: {status} {reply}")
    return reply["token"]


# ---------------------------------------------------------------------------------------------
# The server under test.

class Server:
    """A fresh looplight, pinned to SERVER_CPU, its stdout/stderr in files in `work`."""

    def __init__(self, binary, work, root, db, flags, start_timeout=120):
        self.out_path = work / "server.out"
        self.err_path = work / "server.err"
        argv = ["taskset", "-c", str(SERVER_CPU), str(binary), "--quiet",
                "--addr", "127.0.0.1:0", "--root", str(root), "--db", str(db), *flags]
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            # taskset execs the server: this pid is the server's
            self.proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        deadline = time.monotonic() + start_timeout
        while True:
            text = self.out_path.read_text(errors="replace")
            match = re.search(r"looplight listening on http://127\.0\.0\.1:(\d+)", text)
            if match:
                self.port = int(match.group(1))
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not start ({' '.join(argv)}): "
                                   f"{self.err_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)

    def status_kib(self, field):
        """VmRSS, VmHWM, ... of the server in KiB (None once it has exited)."""
        try:
            with open(f"/proc/{self.pid}/status") as status:
                for line in status:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=1.5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def supported_flags(binary):
    """The long flags the binary's --help mentions (an older binary lacks some)."""
    try:
        text = subprocess.run([str(binary), "--help"], capture_output=True, text=True,
                              timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return set(re.findall(r"--[a-z][a-z0-9-]+", text))


def warm_up(port, count=50):
    deadline = time.monotonic() + 10
    conn = Http(port, deadline)
    request = raw_request("GET", PROBE_PATH)
    for _ in range(count):
        status, *_ = conn.exchange(request, deadline)
        if status != 200:
            raise RuntimeError(f"warm-up GET {PROBE_PATH}: {status}")
    conn.close()


# ---------------------------------------------------------------------------------------------
# The probe and the heavy clients: separate processes, pinned to CLIENT_CPU, sharing only
# counters in shared memory (so that killing a late one loses nothing already counted).

# Counter slots of one heavy client.
DONE, TIMEOUTS, CONN_ERRORS, BAD_STATUS, LAST_BAD, BYTES, ENCODED, CUT, FINISHED = range(9)
SLOTS = 9


def wait_until(moment):
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def probe_main(port, start, deadline, stop, samples, count, timeouts, failures):
    """GET /hello.txt every PROBE_INTERVAL on one keep-alive connection until the deadline;
    each latency (ms) goes into samples[count]. A timeout (PROBE_TIMEOUT, connecting included)
    or a failure is counted, recorded as PROBE_TIMEOUT, and the probe reconnects."""
    request = raw_request("GET", PROBE_PATH)
    conn = None
    wait_until(start)
    next_send = time.monotonic()
    while True:
        wait_until(next_send)
        now = time.monotonic()
        if now >= deadline or stop.is_set() or count.value >= len(samples):
            break
        next_send = max(next_send + PROBE_INTERVAL, now)
        sent = time.monotonic()  # a reconnection is part of the request it is for
        try:
            if conn is None or not conn.open:
                conn = Http(port, sent + PROBE_TIMEOUT)
            status, *_ = conn.exchange(request, sent + PROBE_TIMEOUT)
            elapsed = (time.monotonic() - sent) * 1000
            if status != 200:
                failures.value += 1
        except (OSError, ValueError) as error:
            elapsed = PROBE_TIMEOUT * 1000
            if isinstance(error, socket.timeout):
                timeouts.value += 1
            else:
                failures.value += 1
            if conn is not None:
                conn.close()
            conn = None
            if not isinstance(error, socket.timeout):
                time.sleep(0.01)  # a refused connection must not spin
        samples[count.value] = elapsed
        count.value += 1


def client_main(port, start, deadline, counters, base, requests, cycle, timeout):
    """Sends `requests` (raw bytes) one after the other on keep-alive connections, once or in
    a loop, until done or the deadline; counts into counters[base + slot]."""
    os.nice(CLIENT_NICE)
    conn = None
    wait_until(start)
    index = 0
    while time.monotonic() < deadline and (cycle or index < len(requests)):
        request = requests[index % len(requests)]
        index += 1
        try:
            if conn is None or not conn.open:
                conn = Http(port, min(time.monotonic() + timeout, deadline))
            status, headers, _, size = conn.exchange(
                request, min(time.monotonic() + timeout, deadline))
        except socket.timeout:
            if conn is not None:
                conn.close()
            conn = None
            if time.monotonic() < deadline:
                counters[base + TIMEOUTS] += 1
            else:  # cut by the end of the window: not an error
                counters[base + CUT] += 1
            continue
        except (OSError, ValueError):
            counters[base + CONN_ERRORS] += 1
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.01)
            continue
        counters[base + BYTES] += size
        if 200 <= status < 300:
            counters[base + DONE] += 1
            if "content-encoding" in headers:
                counters[base + ENCODED] += 1
        else:
            counters[base + BAD_STATUS] += 1
            counters[base + LAST_BAD] = status
    counters[base + FINISHED] = 1


class Window:
    """What one measured window produced."""

    def __init__(self):
        self.latencies = []
        self.probe_timeouts = 0
        self.probe_failures = 0
        self.clients = []         # one dict of counters per heavy client
        self.elapsed = 0.0        # seconds the heavy clients were measured over
        self.outputs = []         # stdout+stderr of each command
        self.server_exit = None   # the server's exit status if it died during the window

    def heavy(self, slot):
        return sum(client[slot] for client in self.clients)

    @property
    def errors(self):
        return self.heavy(TIMEOUTS) + self.heavy(CONN_ERRORS) + self.heavy(BAD_STATUS)

    def error_text(self):
        parts = []
        if self.heavy(TIMEOUTS):
            parts.append(f"{self.heavy(TIMEOUTS)} timeouts")
        if self.heavy(CONN_ERRORS):
            parts.append(f"{self.heavy(CONN_ERRORS)} connection failures")
        if self.heavy(BAD_STATUS):
            last = max(client[LAST_BAD] for client in self.clients)
            parts.append(f"{self.heavy(BAD_STATUS)} bad statuses (e.g. {last})")
        return ", ".join(parts) or "none"


def run_window(port, seconds, loads=(), probe=True, finite=False, commands=(), sample=None,
               work=None):
    """Runs the probe (if asked), one heavy client process per entry of `loads` (each a dict:
    requests, cycle, timeout) and the `commands` (argv lists, run pinned to CLIENT_CPU) together
    for `seconds`, calling sample() about every 50 ms meanwhile. With finite=True the window
    ends as soon as every client has finished its list. Everything is stopped at the deadline:
    clients bound their own I/O by it and are killed if they are still there 1 s later."""
    result = Window()
    start = time.monotonic() + 0.5        # time for the processes to be forked
    deadline = start + seconds
    stop = MP.Event()
    counters = MP.Array("q", SLOTS * len(loads), lock=False)
    samples = MP.Array("d", int(seconds / PROBE_INTERVAL) + 1000, lock=False)
    count = MP.Value("q", 0, lock=False)
    timeouts = MP.Value("q", 0, lock=False)
    failures = MP.Value("q", 0, lock=False)
    procs = []
    for i, load in enumerate(loads):
        procs.append(MP.Process(target=client_main, daemon=True, args=(
            port, start, deadline, counters, i * SLOTS, load["requests"], load["cycle"],
            load["timeout"])))
    prober = None
    if probe:
        prober = MP.Process(target=probe_main, daemon=True,
                            args=(port, start, deadline, stop, samples, count, timeouts, failures))
        procs.append(prober)
    running = []
    try:
        for proc in procs:
            proc.start()
        wait_until(start)
        for i, argv in enumerate(commands):
            out = open(work / f"command{i}.out", "w+b")
            running.append((subprocess.Popen(
                ["nice", "-n", str(CLIENT_NICE), "taskset", "-c", str(CLIENT_CPU), *argv],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True), out))

        end = deadline
        while time.monotonic() < deadline:
            if sample:
                sample()
            if finite and loads and all(counters[i * SLOTS + FINISHED]
                                        for i in range(len(loads))):
                end = time.monotonic()
                break
            time.sleep(0.05)
        stop.set()
        result.elapsed = max(0.001, min(end, time.monotonic()) - start)

        for proc in procs:
            limit = deadline + (PROBE_TIMEOUT + 0.5 if proc is prober else 1.0)
            proc.join(timeout=max(0.0, limit - time.monotonic()))
    finally:  # also on Ctrl-C: nothing outlives the window
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join()
        for proc, out in running:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)  # slowhttptest prints its summary
                try:
                    proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            out.seek(0)
            result.outputs.append(out.read().decode(errors="replace"))
            out.close()

    result.latencies = list(samples[:count.value])
    result.probe_timeouts = timeouts.value
    result.probe_failures = failures.value
    result.clients = [list(counters[i * SLOTS:(i + 1) * SLOTS]) for i in range(len(loads))]
    return result


def loops(requests_per_client, timeout=10.0):
    """Heavy clients that repeat their requests until the deadline."""
    return [{"requests": reqs, "cycle": True, "timeout": timeout} for reqs in requests_per_client]


def once(requests_per_client, timeout=30.0):
    """Heavy clients that send each of their requests once."""
    return [{"requests": reqs, "cycle": False, "timeout": timeout} for reqs in requests_per_client]


# ---------------------------------------------------------------------------------------------
# Files of the site (created once per run, in one root shared by all scenarios).

class Site:
    def __init__(self, root):
        self.root = root
        self.made = set()
        (root / "hello.txt").write_text("Hello, world\n")

    def once(self, name, make):
        if name not in self.made:
            started = time.monotonic()
            make()
            self.made.add(name)
            print(f"  (created {name} in {time.monotonic() - started:.1f} s)", flush=True)

    def sparse(self, name, size):
        def make():
            with open(self.root / name, "wb"):
                pass
            os.truncate(self.root / name, size)
        self.once(name, make)

    def random_file(self, name, size):
        def make():
            block = os.urandom(1 << 20)
            with open(self.root / name, "wb") as out:
                for _ in range(size // len(block)):
                    out.write(block)
                out.write(block[:size % len(block)])
        self.once(name, make)

    def empty_files(self, directory, count):
        def make():
            path = self.root / directory
            path.mkdir()
            for i in range(count):
                os.close(os.open(path / f"f{i:05}.txt", os.O_CREAT | os.O_WRONLY, 0o644))
        self.once(f"{directory}/ ({count} files)", make)

    def text_files(self, directory, count, size):
        """`count` distinct, compressible text files of about `size` bytes: lines drawn from a
        pool of random sentences of random words (seeded, so every run serves the same)."""
        def make():
            rng = random.Random(1234)
            letters = "abcdefghijklmnopqrstuvwxyz"
            words = ["".join(rng.choices(letters, k=rng.randint(2, 10))) for _ in range(5000)]
            sentences = [" ".join(rng.choices(words, k=rng.randint(5, 20))) + ".\n"
                         for _ in range(4000)]
            per_file = size // (sum(map(len, sentences)) // len(sentences)) + 1
            path = self.root / directory
            path.mkdir()
            for i in range(count):
                (path / f"{i:03}.txt").write_text("".join(rng.choices(sentences, k=per_file)))
        self.once(f"{directory}/ ({count} text files)", make)


# ---------------------------------------------------------------------------------------------
# The scenarios. Each gets a context (ctx) and returns a Result.

class Result:
    def __init__(self, name, window=None, heavy=None, notes="", skipped=None, extra=None):
        self.name = name
        self.window = window
        self.heavy_name = heavy       # what a heavy request is ("searches"); None: not counted
        self.notes = notes
        self.skipped = skipped
        self.extra = extra            # a line of its own (loginburst)


class Context:
    def __init__(self, binary, seconds, work, site, flags):
        self.binary = binary
        self.seconds = seconds
        self.work = work
        self.site = site
        self.flags = flags
        self.serial = 0

    def server(self, *flags, start_timeout=120):
        """A fresh server (fresh database) with these extra flags, warmed up."""
        self.serial += 1
        run_dir = self.work / f"run{self.serial}"
        run_dir.mkdir()
        server = Server(self.binary, run_dir, self.site.root, run_dir / "looplight.db", flags,
                        start_timeout)
        try:
            warm_up(server.port)
        except Exception:
            server.stop()
            raise
        return server

    def window(self, server, **kwargs):
        window = run_window(server.port, self.seconds, work=server.out_path.parent, **kwargs)
        if not server.alive():
            window.server_exit = server.proc.returncode
        return window


def mib(kib):
    return "?" if kib is None else f"{kib / 1024:.0f} MiB"


def sc_alone(ctx):
    server = ctx.server()
    try:
        window = ctx.window(server)
    finally:
        server.stop()
    return Result("alone", window)


def sc_multirange(ctx):
    ctx.site.sparse("big.bin", 1 << 30)
    server = ctx.server()
    try:
        request = raw_request("GET", "/big.bin", {"Range": "bytes=0-0,-1"})
        window = ctx.window(server, loads=loops([[request]] * 2, timeout=30))
        peak = server.status_kib("VmHWM")
    finally:
        server.stop()
    return Result("multirange", window, "requests", f"server peak RSS {mib(peak)}")


def sc_listing(ctx):
    ctx.site.empty_files("many", 30000)
    server = ctx.server("--list-dirs")
    try:
        window = ctx.window(server, loads=loops([[raw_request("GET", "/many/")]] * 4))
    finally:
        server.stop()
    done = window.heavy(DONE)
    size = window.heavy(BYTES) / max(1, done + window.heavy(BAD_STATUS))
    return Result("listing", window, "listings", f"{size / 1024:.0f} KiB per listing")


def sc_compress(ctx):
    ctx.site.text_files("t", 400, 200_000)
    server = ctx.server("--compress")
    try:
        paths = [raw_request("GET", f"/t/{i:03}.txt", {"Accept-Encoding": "br"})
                 for i in range(400)]
        window = ctx.window(server, loads=once([paths[i::4] for i in range(4)]), finite=True)
    finally:
        server.stop()
    done = window.heavy(DONE)
    ratio = window.heavy(BYTES) / max(1, done) / 200_000
    return Result("compress", window, "files",
                  f"{done}/400 in {window.elapsed:.1f} s, {window.heavy(ENCODED)} encoded, "
                  f"{ratio:.0%} of the size")


def sc_search(ctx):
    server = ctx.server("--seed-posts", "20000", start_timeout=300)
    try:
        def terms(i):  # each client walks the word list from its own place
            return [raw_request("GET", f"/api/search?q={SEARCH_WORDS[(i + k) % len(SEARCH_WORDS)]}")
                    for k in range(len(SEARCH_WORDS))]
        window = ctx.window(server, loads=loops([terms(i) for i in range(6)]))
    finally:
        server.stop()
    return Result("search", window, "searches")


def sc_lookups(ctx):
    server = ctx.server("--seed-posts", "20000", start_timeout=300)
    try:
        def ids(i):  # point lookups, answered on the loop: each client its own spread of ids
            return [raw_request("GET", f"/api/posts/{1 + (i * 7919 + k * 104729) % 20000}")
                    for k in range(200)]
        window = ctx.window(server, loads=loops([ids(i) for i in range(6)]))
    finally:
        server.stop()
    return Result("lookups", window, "lookups")


def sc_writes(ctx):
    server = ctx.server()
    try:
        tokens = [login(server.port, user) for user in register_users(server.port, 6)]
        body = {"title": "t", "body": "some text"}
        window = ctx.window(server, loads=loops(
            [raw_request("POST", "/api/posts", {"Authorization": f"Bearer {token}"}, body)]
            for token in tokens))
    finally:
        server.stop()
    return Result("writes", window, "writes")


def sc_downloads(ctx):
    ctx.site.random_file("64m.bin", 64 << 20)
    server = ctx.server()
    try:
        window = ctx.window(server, loads=loops([[raw_request("GET", "/64m.bin")]] * 8,
                                                timeout=30))
    finally:
        server.stop()
    rate = window.heavy(BYTES) / window.elapsed / (1 << 20)
    return Result("downloads", window, "downloads", f"{rate:.0f} MiB/s")


def sc_logins(ctx):
    server = ctx.server()
    try:
        users = register_users(server.port, 4)
        window = ctx.window(server, loads=loops(
            [[raw_request("POST", "/api/auth/login", body=user)] for user in users]))
    finally:
        server.stop()
    return Result("logins", window, "logins")


def tcp_mem_pages():
    with open("/proc/net/sockstat") as sockstat:
        for line in sockstat:
            if line.startswith("TCP:"):
                fields = line.split()
                return int(fields[fields.index("mem") + 1])
    return 0


def sc_slowread(ctx):
    if not shutil.which("slowhttptest"):
        return Result("slowread", skipped="slowhttptest is not installed")
    ctx.site.random_file("1m.bin", 1 << 20)
    server = ctx.server()
    try:
        baseline = tcp_mem_pages()
        peak = [baseline]

        def sample():
            peak[0] = max(peak[0], tcp_mem_pages())
        # -X slow read; 1,000 connections opened at 200/s; each advertises a 512-1024 byte
        # receive window and reads 32 bytes every 5 s; 3 requests per connection (pipelined,
        # to multiply the response to drain); slowhttptest's own probe times out after 3 s;
        # the test ends on its own after the window (and is stopped then anyway).
        argv = ["slowhttptest", "-X", "-c", "1000", "-r", "200", "-w", "512", "-y", "1024",
                "-n", "5", "-z", "32", "-k", "3", "-p", "3", "-l", str(math.ceil(ctx.seconds)),
                "-u", f"http://127.0.0.1:{server.port}/1m.bin"]
        window = ctx.window(server, commands=[argv], sample=sample)
        peak_rss = server.status_kib("VmHWM")
    finally:
        server.stop()
    report = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", window.outputs[0] if window.outputs else "")

    def last(label):
        found = re.findall(rf"{label}:\s+(\S+)", report)
        return found[-1] if found else "?"
    with open("/proc/sys/net/ipv4/tcp_mem") as limits:
        pressure, hard = limits.read().split()[1:3]
    return Result("slowread", window, None,
                  f"TCP mem peak {peak[0]} pages (before {baseline}; tcp_mem pressure "
                  f"{pressure}, limit {hard}); slowhttptest: "
                  f"connected {last('connected')}, closed {last('closed')}, "
                  f"error {last('error')}, service available {last('service available')}; "
                  f"server peak RSS {mib(peak_rss)}")


def sc_loginburst(ctx):
    server = ctx.server()
    try:
        users = register_users(server.port, 8)
        time.sleep(0.5)
        before = server.status_kib("VmRSS")
        series = []                      # (seconds since the burst ended or None, KiB)

        def sample():
            series.append((None, server.status_kib("VmRSS")))
        logins = [[raw_request("POST", "/api/auth/login", body=user)] * (100 // 8 + (i < 100 % 8))
                  for i, user in enumerate(users)]
        window = run_window(server.port, max(60.0, ctx.seconds), loads=once(logins),
                            probe=False, finite=True, sample=sample, work=server.out_path.parent)
        ended = time.monotonic()
        for step in range(1, 21):        # every 250 ms for 5 s
            wait_until(ended + step * 0.25)
            series.append((step * 0.25, server.status_kib("VmRSS")))
    finally:
        server.stop()
    peak = max([before] + [kib for _, kib in series if kib is not None])
    after = {t: kib for t, kib in series if t is not None}
    done = window.heavy(DONE)
    extra = (f"loginburst: {done}/100 logins in {window.elapsed:.1f} s (errors: "
             f"{window.error_text()}); server VmRSS before {mib(before)}, peak {mib(peak)}, after 1 s "
             f"{mib(after.get(1.0))}, after 3 s {mib(after.get(3.0))}, after 5 s "
             f"{mib(after.get(5.0))}")
    notes = (f"RSS {mib(before)} -> peak {mib(peak)} -> {mib(after.get(1.0))} / "
             f"{mib(after.get(3.0))} / {mib(after.get(5.0))} at 1/3/5 s")
    return Result("loginburst", window, "logins", notes, extra=extra)


SCENARIOS = {  # name -> (function, server flags it needs)
    "alone": (sc_alone, []),
    "multirange": (sc_multirange, []),
    "listing": (sc_listing, ["--list-dirs"]),
    "compress": (sc_compress, ["--compress"]),
    "search": (sc_search, ["--seed-posts"]),
    "lookups": (sc_lookups, ["--seed-posts"]),
    "writes": (sc_writes, []),
    "downloads": (sc_downloads, []),
    "logins": (sc_logins, []),
    "slowread": (sc_slowread, []),
    "loginburst": (sc_loginburst, []),
}


# ---------------------------------------------------------------------------------------------
# Figures, lines, the table.

def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))]


def figures(result, alone_p99):
    """The row of one result: a dict of printable cells."""
    row = {"scenario": result.name, "n": "-", "p50": "-", "p99": "-", "max": "-", "to": "-",
           "heavy": "-", "rate": "-", "errs": "-", "verdict": "-", "notes": result.notes}
    if result.skipped:
        row["verdict"] = "skipped"
        row["notes"] = result.skipped
        return row
    window = result.window
    ok = True
    if window.latencies or result.name != "loginburst":
        values = sorted(window.latencies)
        p50, p99, top = percentile(values, 0.5), percentile(values, 0.99), max(values or [0])
        row.update(n=str(len(values)), p50=f"{p50:.2f}", p99=f"{p99:.2f}", max=f"{top:.1f}",
                   to=str(window.probe_timeouts)
                   + (f"+{window.probe_failures}err" if window.probe_failures else ""))
        limit = max(5 * alone_p99, 5.0) if alone_p99 is not None else 5.0
        ok = (bool(values) and p99 <= limit and top <= 100
              and window.probe_timeouts + window.probe_failures == 0)
    if result.heavy_name:
        done = window.heavy(DONE)
        row.update(heavy=str(done), rate=f"{done / window.elapsed:.1f}", errs=str(window.errors))
        ok = ok and done > 0 and window.errors == 0
        if window.errors:
            row["notes"] = "; ".join(filter(None, [row["notes"], window.error_text()]))
        if window.heavy(CUT) and not done:  # a looping client always has one in flight
            row["notes"] = "; ".join(filter(None, [
                row["notes"], f"none done, {window.heavy(CUT)} still in flight at the end"]))
    if window.server_exit is not None:
        ok = False
        row["notes"] = "; ".join(filter(None, [
            row["notes"], f"THE SERVER EXITED during the window (status {window.server_exit})"]))
    if result.name != "loginburst":
        row["verdict"] = "ok" if ok else "FAIL"
    return row


def line(row, result):
    if result.skipped:
        return f"{row['scenario']}: skipped ({result.skipped})"
    if result.extra:
        return result.extra
    text = (f"{row['scenario']}: probe p50 {row['p50']} ms, p99 {row['p99']} ms, max "
            f"{row['max']} ms, {row['to']} timeouts (n={row['n']})")
    if result.heavy_name:
        text += (f"; {row['heavy']} {result.heavy_name} ({row['rate']}/s), heavy errors: "
                 f"{result.window.error_text()}, {result.window.heavy(CUT)} in flight at the end")
    if result.notes:
        text += f"; {result.notes}"
    if result.window.server_exit is not None:
        text += f"; THE SERVER EXITED during the window (status {result.window.server_exit})"
    return f"{text} -> {row['verdict']}"


COLUMNS = [("scenario", "scenario"), ("n", "n"), ("p50", "p50 ms"), ("p99", "p99 ms"),
           ("max", "max ms"), ("to", "timeouts"), ("heavy", "heavy"), ("rate", "heavy/s"),
           ("errs", "errs"), ("verdict", "verdict"), ("notes", "notes")]


def table(rows):
    widths = {key: max(len(title), *(len(row[key]) for row in rows)) for key, title in COLUMNS}
    out = []
    for cells in [{key: title for key, title in COLUMNS}] + rows:
        parts = []
        for key, _ in COLUMNS:
            cell = cells[key]
            parts.append(cell if key == "notes" else
                         cell.ljust(widths[key]) if key in ("scenario", "verdict")
                         else cell.rjust(widths[key]))
        out.append("  ".join(parts).rstrip())
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(
        description="Does one client's heavy request stall the others? (see the file's top)")
    parser.add_argument("--bin", default=str(REPO / "target/release/looplight"),
                        help="the server binary (default: target/release/looplight)")
    parser.add_argument("--seconds", type=float, default=8.0,
                        help="length of each measured window (default 8)")
    parser.add_argument("--only", default="",
                        help="comma-separated scenarios: " + ",".join(SCENARIOS))
    args = parser.parse_args()

    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {','.join(unknown)}; known: {','.join(SCENARIOS)}")
    names = ["alone"] + [n for n in SCENARIOS if n in names and n != "alone"]
    binary = Path(args.bin)
    if not binary.is_absolute():
        binary = REPO / binary
    if not os.access(binary, os.X_OK):
        sys.exit(f"no server binary at {binary} (cargo build --release, or --bin PATH)")
    if not shutil.which("taskset"):
        sys.exit("needs taskset (util-linux)")
    if not {SERVER_CPU, CLIENT_CPU} <= os.sched_getaffinity(0):
        sys.exit(f"needs cores {SERVER_CPU} and {CLIENT_CPU}")
    # This process, and every process it forks (probe, clients), runs on CLIENT_CPU.
    os.sched_setaffinity(0, {CLIENT_CPU})
    flags = supported_flags(binary)
    # SIGTERM, like Ctrl-C, goes through the clean-up (clients, slowhttptest, server, files).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    work = Path(tempfile.mkdtemp(prefix="looplight-isolation-"))
    try:
        (work / "site").mkdir()
        ctx = Context(binary, args.seconds, work, Site(work / "site"), flags)
        print(f"isolation: {binary}, {args.seconds:g} s per scenario, server on core "
              f"{SERVER_CPU}, probe and clients on core {CLIENT_CPU}", flush=True)
        results, rows, alone_p99 = [], [], None
        for name in names:
            function, needs = SCENARIOS[name]
            missing = [flag for flag in needs if flag not in flags]
            started = time.monotonic()
            if missing:
                result = Result(name, skipped=f"the binary lacks {' '.join(missing)}")
            else:
                try:
                    result = function(ctx)
                except Exception as error:  # one broken scenario must not hide the others
                    result = Result(name, skipped=f"error: {error}")
            window = result.window
            if (name == "alone" and window and window.latencies and window.server_exit is None
                    and window.probe_timeouts + window.probe_failures == 0):
                alone_p99 = percentile(sorted(window.latencies), 0.99)
            row = figures(result, alone_p99)
            results.append(result)
            rows.append(row)
            print(f"{line(row, result)}  [{time.monotonic() - started:.1f} s]", flush=True)
        limit = max(5 * alone_p99, 5.0) if alone_p99 is not None else 5.0
        print()
        print(f"goal: probe p99 <= {limit:.2f} ms (max of 5 x alone p99 and 5 ms), probe max "
              f"<= 100 ms, no probe timeouts, heavy requests succeed")
        if alone_p99 is None:
            print("(the alone run failed: no baseline, the p99 limit is 5 ms)")
        print(table(rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
