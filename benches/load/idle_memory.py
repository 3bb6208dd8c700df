#!/usr/bin/env python3
"""Server memory per idle keep-alive connection.

Opens N connections to a running server on 127.0.0.1 (after one request on a connection of
its own, so that the code serving it is mapped), sends one GET on each and reads the
response, then holds them all idle and prints the server's RSS before and after; then closes
them all and prints the RSS once the server has let them go (what memory it gives back). With
--tls the connections are HTTPS (certificate not verified: only memory is measured).

    benches/load/idle_memory.py [--tls] PORT PID [N] [PATH]
"""
import socket
import ssl
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
    args = sys.argv[1:]
    tls = None
    if args and args[0] == "--tls":
        args = args[1:]
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    port, pid = int(args[0]), int(args[1])
    count = int(args[2]) if len(args) > 2 else 10000
    path = args[3] if len(args) > 3 else "/index.html"
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    # One request first, so that the code that serves it is mapped (and the file cached) and
    # the connections' figure is the connections' own memory.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as warm_up:
        if tls:
            warm_up = tls.wrap_socket(warm_up, server_hostname="localhost")
        warm_up.sendall(request)
        read_response(warm_up)
    time.sleep(0.5)
    before = rss_kib(pid)
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if tls:
            sock = tls.wrap_socket(sock, server_hostname="localhost")
        sock.sendall(request)
        read_response(sock)
        socks.append(sock)
    time.sleep(0.5)
    after = rss_kib(pid)
    kind = "TLS" if tls else "plain"
    print(f"{count} idle {kind} connections after GET {path}: RSS {before} KiB -> {after} KiB, "
          f"{(after - before) * 1024 / count:.0f} bytes per connection")
    for sock in socks:
        sock.close()
    time.sleep(1.0)
    print(f"all {count} closed: RSS {rss_kib(pid)} KiB (started at {before} KiB)")


if __name__ == "__main__":
    main()
