#!/usr/bin/env python3
"""Chat delivery time across instances: a stream held on instance B, messages posted to
instance A one at a time; for each, the time from sending the POST to reading the event on B.

    benches/load/chat_across.py POST_PORT STREAM_PORT TOKEN [COUNT]

Prints p50, p99 and max over COUNT messages (default 1,000). Loopback only.
"""
import http.client
import json
import socket
import sys
import time


def open_stream(port, token):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        f"GET /api/chat/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    )
    return sock


def main():
    post_port, stream_port, token = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    stream = open_stream(stream_port, token)
    buffered = b""
    while b"\r\n\r\n" not in buffered:
        buffered += stream.recv(65536)
    buffered = buffered.split(b"\r\n\r\n", 1)[1]
    poster = http.client.HTTPConnection("127.0.0.1", post_port, timeout=10)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    delays = []
    for n in range(count):
        text = f"across {n} {time.time()}"
        started = time.perf_counter()
        poster.request("POST", "/api/chat/messages", json.dumps({"text": text}), headers)
        response = poster.getresponse()
        response.read()
        if response.status != 201:
            raise SystemExit(f"POST gave {response.status}")
        marker = text.encode()
        while marker not in buffered:
            buffered += stream.recv(65536)
        delays.append(time.perf_counter() - started)
        buffered = buffered.split(marker, 1)[1]
    delays.sort()
    pick = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))] * 1000
    print(f"{count} messages posted on :{post_port}, read from a stream on :{stream_port}: "
          f"p50 {pick(0.5):.2f} ms, p99 {pick(0.99):.2f} ms, max {delays[-1] * 1000:.2f} ms")


main()
