#!/usr/bin/env python3
"""Memory of a server that has just started: VmRSS, and where it lies.

    benches/load/start_memory.py BIN [RUNS] [-- FLAGS...]
    benches/load/start_memory.py target/release/looplight 5

Starts BIN RUNS times (default 3) on its defaults but for a free port and a database in a
temporary directory: first on a new database (it creates the tables), then again on the same
one. Each start waits until the server says it is serving (no client connects) and then one
second more, and reads /proc/PID/smaps. Each start prints VmRSS and the resident KiB of:

  text     the binary's code (r-xp)
  ro       the binary's read-only data: rodata, unwind tables, relocations, relocated data
  rw       the binary's writable data and bss
  libs     shared libraries (libc, libm, libgcc_s, ld.so)
  anon     heap, thread stacks, other anonymous memory

A file-backed page counts when it is mapped, and the kernel maps up to 64 KiB of pages that
are already in the page cache around each page fault ("fault-around"): what code runs at start,
and where it lies in the binary, decides `text`. Loopback only, a few seconds per run.
"""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(server, deadline_s=10.0):
    """Waits for the server's "serving" message on stderr (its workers are built; nothing has
    connected yet). Reading stderr goes on in the background."""
    serving = threading.Event()

    def read_stderr():
        for line in server.stderr:
            if b" serving " in line:
                serving.set()

    threading.Thread(target=read_stderr, daemon=True).start()
    if not serving.wait(deadline_s):
        raise SystemExit("the server did not start")


def resident(pid, binary):
    """KiB resident per kind of mapping, from /proc/PID/smaps."""
    kinds = dict.fromkeys(["text", "ro", "rw", "libs", "anon"], 0)
    kind = None
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if not fields[0].endswith(":"):
                perms, path = fields[1], (fields[5] if len(fields) > 5 else "")
                if os.path.basename(path) == os.path.basename(binary):
                    kind = {"r-x": "text", "r--": "ro"}.get(perms[:3], "rw")
                elif path.startswith("/") and ".so" in path:
                    kind = "libs"
                else:
                    kind = "anon"
            elif fields[0] == "Rss:":
                kinds[kind] += int(fields[1])
    with open(f"/proc/{pid}/status") as status:
        vmrss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return vmrss, kinds


def main():
    args = sys.argv[1:]
    flags = []
    if "--" in args:
        flags = args[args.index("--") + 1:]
        args = args[:args.index("--")]
    if not args:
        raise SystemExit(__doc__)
    binary = os.path.abspath(args[0])
    runs = int(args[1]) if len(args) > 1 else 3
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "www")
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as workdir:
            for database in ("new", "existing"):
                vmrss, kinds = measure_start(binary, root, workdir, flags)
                parts = "  ".join(f"{kind} {kib:5d}" for kind, kib in kinds.items())
                print(f"{database:8s} database: VmRSS {vmrss:6d} KiB ({vmrss / 1024:.1f} MiB)  "
                      f"{parts}")


def measure_start(binary, root, workdir, flags):
    port = free_port()
    server = subprocess.Popen(
        [binary, "--quiet", "--addr", f"127.0.0.1:{port}", "--root", root,
         "--db", os.path.join(workdir, "start.db")] + flags,
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until_serving(server)
        time.sleep(1)
        return resident(server.pid, binary)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
