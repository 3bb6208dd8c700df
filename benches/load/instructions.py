#!/usr/bin/env python3
"""Instructions per request, counted by callgrind: repeatable on a noisy shared machine,
where wall-clock figures are not (valgrind counts instructions, whatever else runs).

    benches/load/instructions.py BIN [PATH ...]
    benches/load/instructions.py /tmp/looplight-before /hello.txt /api/posts/1 /healthz

For each path, the server (BIN, on its defaults but for a temporary database with one post)
runs under `valgrind --tool=callgrind` twice: once answering N1 requests, once N2. Each run
sends its requests pipelined 16 at a time on one keep-alive connection, then stops the
server with SIGINT. The difference of the two totals over N2 - N1 is the cost of one request,
with start-up, the first (cold) requests and shutdown cancelled out.

Needs valgrind (Debian's package). Loopback only; a few seconds per path.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

N1, N2 = 2_000, 6_000
PIPELINE = 16
PORT = 18290


def wait_for_port(deadline_s=60.0):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the server did not start under valgrind")


def send_requests(path, count):
    """Sends `count` GETs for `path`, PIPELINE per write, and reads every response."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", PORT), timeout=30) as sock:
        answered = 0
        pending = b""
        while answered < count:
            batch = min(PIPELINE, count - answered)
            sock.sendall(request * batch)
            got = 0
            while got < batch:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    raise SystemExit("the server closed the connection")
                pending += chunk
                while True:
                    head_end = pending.find(b"\r\n\r\n")
                    if head_end < 0:
                        break
                    match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", pending[:head_end])
                    length = int(match.group(1)) if match else 0
                    if len(pending) < head_end + 4 + length:
                        break
                    status = pending[9:12]
                    if status[:1] not in (b"2", b"3", b"4"):
                        raise SystemExit(f"unexpected status {status!r} for {path}")
                    pending = pending[head_end + 4 + length:]
                    got += 1
            answered += batch


def instructions(binary, path, count, workdir):
    out = os.path.join(workdir, f"callgrind.{count}")
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
         binary, "--quiet", "--addr", f"127.0.0.1:{PORT}", "--root", "www",
         "--db", os.path.join(workdir, "bench.db"), "--seed-posts", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port()
        send_requests(path, count)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=120)
    with open(out) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise SystemExit("no total in callgrind's output")


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    binary, paths = sys.argv[1], sys.argv[2:] or ["/hello.txt"]
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    for path in paths:
        with tempfile.TemporaryDirectory() as workdir:
            low = instructions(binary, path, N1, workdir)
        with tempfile.TemporaryDirectory() as workdir:
            high = instructions(binary, path, N2, workdir)
        print(f"{path}: {(high - low) / (N2 - N1):,.0f} instructions per request")


if __name__ == "__main__":
    main()
