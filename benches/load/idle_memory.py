#!/usr/bin/env python3
"""Server memory per idle keep-alive connection.

Opens N connections to a running server on 127.0.0.1, sends one GET on each and reads the
response, then holds them all idle and prints the server's RSS before and after.

    benches/load/idle_memory.py PORT PID [N] [PATH]
"""
import socket
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def read_response(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("closed before the head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += sock.recv(65536)


def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    path = sys.argv[4] if len(sys.argv) > 4 else "/index.html"
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    before = rss_kib(pid)
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(request)
        read_response(sock)
        socks.append(sock)
    time.sleep(0.5)
    after = rss_kib(pid)
    print(f"{count} idle connections after GET {path}: RSS {before} KiB -> {after} KiB, "
          f"{(after - before) * 1024 / count:.0f} bytes per connection")
    for sock in socks:
        sock.close()


if __name__ == "__main__":
    main()
