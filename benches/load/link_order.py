#!/usr/bin/env python3
"""Writes src/link-order.txt: the functions that run, in the order the linker should lay
them out (build.rs hands the file to the linker for release builds; see its docs).

    cargo build --release && benches/load/link_order.py target/release/looplight
    benches/load/link_order.py --check target/release/looplight

(From a `cargo build --release` binary: `cargo bench` also writes target/release/looplight,
built with the bench profile, and its symbols' hashes differ from a release build's.)

The release binary runs twice under `valgrind --tool=callgrind` on its defaults, with a
temporary database: first on a new database, then on the same one again. Each time, a second
after it says it is serving, callgrind dumps what ran so far: the start-up. The second time a
mix of requests follows (a registration, a login, a post, then static files, conditional and
range requests, a 404, the API's reads and a search), and the server stops on SIGINT. The
file lists:

  1. every function of the binary that ran at start-up on an existing database: the code
     every process maps;
  2. then those that ran only when the database was new (creating the tables);
  3. then every other function that ran for a request, most instructions first.

Functions that never ran keep the linker's order after them. Names are the symbols' mangled
names. A name the binary no longer has is skipped by the linker without a word, so a stale
list costs nothing but the layout: run this again after renaming hot functions or changing
Cargo.lock or the toolchain (symbol hashes change with them). `--check BIN` tells how many
of the listed names a binary has, and whether the linker laid them out in the list's order.

Needs valgrind (Debian's package). Loopback only; a few seconds.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

from start_memory import wait_until_serving

PORT = 18291
HERE = os.path.dirname(os.path.abspath(__file__))
CHECKOUT = os.path.join(HERE, "..", "..")
ORDER_FILE = os.path.join(CHECKOUT, "src", "link-order.txt")

# (method, target, extra header lines, body): each sent REPEAT times on one connection.
REQUESTS = [
    ("GET", "/", "", b""),
    ("GET", "/hello.txt", "", b""),
    ("HEAD", "/hello.txt", "", b""),
    ("GET", "/hello.txt", "Range: bytes=0-3\r\n", b""),
    ("GET", "/hello.txt", "If-None-Match: *\r\n", b""),
    ("GET", "/app.js", "Accept-Encoding: gzip, br\r\n", b""),
    ("GET", "/style.css", "Accept-Encoding: gzip\r\n", b""),
    ("GET", "/no/such/file", "", b""),
    ("GET", "/healthz", "", b""),
    ("GET", "/api/posts", "", b""),
    ("GET", "/api/posts/1", "", b""),
    ("GET", "/api/search?q=layout", "", b""),
    ("OPTIONS", "/api/posts", "", b""),
]
REPEAT = 50


def exchange(request, count=1):
    """Sends `request` `count` times on one connection; returns the last response."""
    with socket.create_connection(("127.0.0.1", PORT), timeout=60) as sock:
        sock.sendall(request * count)
        pending, answered, last = b"", 0, b""
        while answered < count:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise SystemExit("the server closed the connection")
            pending += chunk
            while (head_end := pending.find(b"\r\n\r\n")) >= 0:
                head = pending[:head_end]
                match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                length = int(match.group(1)) if match and not request.startswith(b"HEAD") else 0
                if len(pending) < head_end + 4 + length:
                    break
                last = pending[:head_end + 4 + length]
                pending = pending[head_end + 4 + length:]
                answered += 1
        return last


def request_bytes(method, target, headers, body):
    length = f"Content-Length: {len(body)}\r\n" if body else ""
    return (f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}{length}\r\n"
            .encode() + body)


def expect_success(response, what):
    if response[9:10] not in (b"2", b"3"):
        raise SystemExit(f"{what}: {response[:12]!r}")
    return response


def run_mix():
    # The writes first: an account, a login, a post (its token from the login's JSON), which
    # the reads below then find.
    account = json.dumps({"username": "layout", "password": "layout-password"}).encode()
    json_type = "Content-Type: application/json\r\n"
    expect_success(exchange(request_bytes("POST", "/api/auth/register", json_type, account)),
                   "register")
    response = expect_success(
        exchange(request_bytes("POST", "/api/auth/login", json_type, account)), "login")
    token = json.loads(response.partition(b"\r\n\r\n")[2] or b"{}").get("token", "")
    post = json.dumps({"title": "Layout", "body": "Functions in the order they run."}).encode()
    expect_success(exchange(request_bytes(
        "POST", "/api/posts", json_type + f"Authorization: Bearer {token}\r\n", post)), "post")
    for method, target, headers, body in REQUESTS:
        response = exchange(request_bytes(method, target, headers, body), REPEAT)
        if target != "/no/such/file":
            expect_success(response, f"{method} {target}")


def callgrind_functions(path, binary_name):
    """{mangled name: self instructions} of the binary's own functions in a callgrind dump."""
    objects, names, costs = {}, {}, {}
    current_object = current_function = None
    after_call = False
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        match = re.match(r"^(c?ob|c?fn)=\((\d+)\)(?: (.*))?$", line)
        if match:
            kind, number, name = match.groups()
            table = objects if kind.endswith("ob") else names
            if name:
                table[number] = name
            if kind == "ob":
                current_object = objects[number]
            elif kind == "fn":
                current_function = None
                if os.path.basename(current_object or "") == binary_name:
                    # callgrind marks recursion levels as name'2; the symbol is the name.
                    current_function = re.sub(r"'\d+$", "", names[number])
                    costs.setdefault(current_function, 0)
        elif current_function and line[:1] in "0123456789+-*" and line:
            # A cost line ("position instructions"), but the one after `calls=` is the
            # callee's inclusive cost, not the current function's own.
            fields = line.split()
            if len(fields) >= 2 and not after_call:
                costs[current_function] += int(fields[1])
        after_call = line.startswith("calls=")
    return costs


def profile(binary, database, mix):
    """Runs `binary` under callgrind on `database`: ({function: instructions} of the start-up,
    the same for what ran after it: the mix of requests if `mix`, and the shutdown)."""
    with tempfile.TemporaryDirectory() as workdir:
        out = os.path.join(workdir, "callgrind.out")
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out}",
             binary, "--quiet", "--addr", f"127.0.0.1:{PORT}", "--root", "www",
             "--db", database],
            cwd=CHECKOUT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            # The start-up is what ran until a second after the server said it serves (as
            # start_memory.py measures it), with no connection made yet.
            wait_until_serving(server, deadline_s=120)
            time.sleep(1)
            subprocess.run(["callgrind_control", "--dump=start-up", str(server.pid)],
                           check=True, stdout=subprocess.DEVNULL)
            if mix:
                run_mix()
        finally:
            # valgrind runs one thread at a time and may miss a signal: repeat it.
            for _ in range(60):
                server.send_signal(signal.SIGINT)
                try:
                    server.wait(timeout=2)
                    break
                except subprocess.TimeoutExpired:
                    pass
            else:
                server.kill()
        name = os.path.basename(binary)
        start_dump = next(os.path.join(workdir, dump) for dump in os.listdir(workdir)
                          if dump.startswith("callgrind.out.") and dump.endswith(".1"))
        return callgrind_functions(start_dump, name), callgrind_functions(out, name)


def check(binary):
    """How many of the listed functions `binary` has, and whether they lead its code."""
    listed = [line.strip() for line in open(ORDER_FILE) if line.strip()]
    addresses = {}
    for line in subprocess.run(["nm", "--defined-only", binary],
                               capture_output=True, text=True, check=True).stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] in "tTwW":
            addresses.setdefault(fields[2], int(fields[0], 16))
    found = [addresses[name] for name in listed if name in addresses]
    in_order = sum(1 for a, b in zip(found, found[1:]) if a < b)
    print(f"{len(found)} of the {len(listed)} listed functions are in {binary}; "
          f"{in_order} of {max(len(found) - 1, 0)} follow the one before them in memory")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        return check(os.path.abspath(sys.argv[2]))
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory() as workdir:
        database = os.path.join(workdir, "layout.db")
        # A first start creates the database; the second opens it, as most starts do.
        first_start, _ = profile(binary, database, mix=False)
        start_up, requests = profile(binary, database, mix=True)
    symbols = set(subprocess.run(["nm", "--defined-only", "--format=just-symbols", binary],
                                 capture_output=True, text=True, check=True).stdout.split())
    # callgrind also names code it found no symbol for ("(below main)", addresses).
    ran_before = set(start_up) | set(first_start)
    start_up = sorted(f for f in start_up if f in symbols)
    creating = sorted(f for f in first_start if f in symbols and f not in start_up)
    later = sorted((f for f in requests if f in symbols and f not in ran_before),
                   key=lambda f: -requests[f])
    with open(ORDER_FILE, "w") as f:
        f.write("".join(name + "\n" for name in start_up + creating + later))
    print(f"{os.path.relpath(ORDER_FILE)}: {len(start_up)} functions run at start-up, "
          f"{len(creating)} more when the database is new, {len(later)} more for requests")


if __name__ == "__main__":
    main()
