#!/usr/bin/env python3
"""Event-stream cost: server memory per open stream, and the time for one chat message to reach
every stream.

Registers a user on a running server (127.0.0.1 only), opens N authenticated
/api/chat/stream connections, reads the server's RSS before and after, then posts one message
and times until every stream has received it (client side, one epoll loop in this process, so
the figure includes this script's own reading).

    benches/load/sse_fanout.py PORT PID [N]
"""
import json
import selectors
import socket
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def call(port, method, path, body=None, token=None):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    sock.sendall(head.encode() + data)
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    sock.close()
    return reply.partition(b"\r\n\r\n")[2]


def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    user = {"username": f"fan{int(time.time())}", "password": "fanout-password"}
    call(port, "POST", "/api/auth/register", user)
    token = json.loads(call(port, "POST", "/api/auth/login", user))["token"]

    before = rss_kib(pid)
    selector = selectors.DefaultSelector()
    request = (f"GET /api/chat/stream HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: Bearer {token}\r\n\r\n").encode()
    streams = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(request)
        streams.append(sock)
    for sock in streams:  # wait for every response head
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    time.sleep(1)
    after = rss_kib(pid)
    print(f"{count} open streams: server RSS {before} KiB -> {after} KiB, "
          f"{(after - before) * 1024 / count:.0f} bytes per stream")

    marker = f"fan-out {time.time()}"
    waiting = set(streams)
    start = time.perf_counter()
    call(port, "POST", "/api/chat/messages", {"text": marker}, token)
    deadline = start + 30
    while waiting and time.perf_counter() < deadline:
        for key, _ in selector.select(timeout=1):
            data = key.fileobj.recv(65536)
            if marker.encode() in data:
                waiting.discard(key.fileobj)
    elapsed = time.perf_counter() - start
    print(f"one message reached {count - len(waiting)}/{count} streams in {elapsed * 1000:.0f} ms "
          f"(from the POST being sent)")
    for sock in streams:
        sock.close()


if __name__ == "__main__":
    main()
