"""Send bursts of ``/bench/seq f N`` datagrams over UDP at a paced rate, one burst per request.

    python -m tests.bench.osc_flood --port UDPPORT --max-count N

Prints ``ready`` once the datagrams are built. Each stdin line ``RATE COUNT``
sends ``COUNT`` datagrams at ``RATE`` per second on absolute deadlines, in
batches just large enough that a deadline comes at most every ``BATCH_S``
(Python cannot wait out a deadline every few microseconds), and answers
``FIRST_NS LAST_NS SENT``: ``time.monotonic_ns()`` before the first send and
after the last. ``quit`` or the end of stdin stops it.
"""

from __future__ import annotations

import argparse
import math
import socket
import sys
import time

from tests.bench.sender import datagrams, wait_until

HOST = "127.0.0.1"
BATCH_S = 50e-6
"""At most one deadline per this many seconds; below 20,000/s every datagram has its own."""


def batch_size(rate: float) -> int:
    return max(1, math.ceil(rate * BATCH_S))


def burst(sock: socket.socket, target: tuple[str, int], packets: list[bytes], rate: float) -> tuple[int, int]:
    """Send ``packets`` paced at ``rate``; a late batch does not push the later ones back."""
    size = batch_size(rate)
    period_ns = round(size * 1e9 / rate)
    start = time.monotonic_ns() + 1_000_000
    first = 0
    for index, offset in enumerate(range(0, len(packets), size)):
        wait_until(start + index * period_ns)
        if index == 0:
            first = time.monotonic_ns()
        for packet in packets[offset : offset + size]:
            sock.sendto(packet, target)
    return first, time.monotonic_ns()


def serve(port: int, max_count: int) -> None:
    packets = datagrams(max_count)
    target = (HOST, port)
    print("ready", flush=True)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for line in sys.stdin:
            if line.strip() == "quit":
                return
            rate, count = line.split()
            sent = packets[: int(count)]
            first, last = burst(sock, target, sent, float(rate))
            print(first, last, len(sent), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-count", type=int, required=True, help="the largest burst that will be asked for")
    args = parser.parse_args()
    serve(args.port, args.max_count)


if __name__ == "__main__":
    main()
