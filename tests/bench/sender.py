"""Send ``/bench/seq f N`` (N = 1, 2, 3, ...) over UDP at a fixed rate; save each send time.

    python sender.py --port UDPPORT --count N --rate HZ --out SEND.npy

Element ``i`` of the saved int64 array is the ``time.monotonic_ns()`` taken just
before sequence number ``i + 1`` was sent.
"""

from __future__ import annotations

import argparse
import socket
import time

import numpy as np
from pythonosc.osc_message_builder import OscMessageBuilder

ADDRESS = "/bench/seq"
SPIN_NS = 100_000
"""Sleep until this close to a deadline, then spin: ``time.sleep`` overshoots by ~50-100 µs."""


def datagrams(count: int) -> list[bytes]:
    """Prebuilt, so building a message never delays a send."""
    out = []
    for n in range(1, count + 1):
        builder = OscMessageBuilder(ADDRESS)
        builder.add_arg(float(n), "f")
        out.append(builder.build().dgram)
    return out


def wait_until(deadline_ns: int) -> None:
    remaining = deadline_ns - time.monotonic_ns()
    if remaining > SPIN_NS:
        time.sleep((remaining - SPIN_NS) / 1e9)
    while time.monotonic_ns() < deadline_ns:
        pass


def send(host: str, port: int, count: int, rate: float) -> np.ndarray:
    packets = datagrams(count)
    sent = np.zeros(count, dtype=np.int64)
    period_ns = round(1e9 / rate)
    target = (host, port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        start = time.monotonic_ns() + 5_000_000
        for i, packet in enumerate(packets):
            # Absolute deadlines: a late send does not push every later one back.
            wait_until(start + i * period_ns)
            sent[i] = time.monotonic_ns()
            sock.sendto(packet, target)
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True, help="messages in all, warm-up included")
    parser.add_argument("--rate", type=float, default=1000.0, help="messages per second")
    parser.add_argument("--out", required=True, help="where to save the send times (.npy)")
    args = parser.parse_args()
    np.save(args.out, send(args.host, args.port, args.count, args.rate))


if __name__ == "__main__":
    main()
