"""Play the Arduino for the serial latency: a ``PtyBoard`` that writes JSON lines ``{"seq": N}`` at a paced rate.

    python -m tests.bench.arduino --dir DIR --count N --rate HZ --out SENT.npy

Makes the pty and its ``DIR/by-id/...`` link, prints the link, then waits for a
line ``go`` on stdin (the reader has opened the port by then). Writes N = 1..count
on absolute deadlines, saves an int64 array whose element ``i`` is the
``time.monotonic_ns()`` taken just before N = i + 1 was written, and prints
``done``. It keeps the pty open until ``quit`` or the end of stdin, so the reader
is never hung up on while it drains.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from tests.bench.sender import wait_until
from tests.support.serial_board import PtyBoard


def lines(count: int) -> list[bytes]:
    """Prebuilt, so formatting never delays a write; what ArduinoJson's ``serializeJson`` + ``println`` send."""
    return [b'{"seq": %d}\r\n' % n for n in range(1, count + 1)]


def write_paced(fd: int, payload: list[bytes], rate: float) -> np.ndarray:
    written = np.zeros(len(payload), dtype=np.int64)
    period_ns = round(1e9 / rate)
    start = time.monotonic_ns() + 5_000_000
    for i, line in enumerate(payload):
        wait_until(start + i * period_ns)
        written[i] = time.monotonic_ns()
        os.write(fd, line)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, required=True, help="where the by-id link goes")
    parser.add_argument("--count", type=int, required=True, help="lines in all, warm-up included")
    parser.add_argument("--rate", type=float, default=1000.0, help="lines per second")
    parser.add_argument("--out", required=True, help="where to save the write times (.npy)")
    args = parser.parse_args()
    payload = lines(args.count)
    board = PtyBoard(args.dir)
    try:
        print(board.link, flush=True)
        if sys.stdin.readline().strip() != "go":
            return
        np.save(args.out, write_paced(board.master, payload, args.rate))
        print("done", flush=True)
        sys.stdin.readline()  # "quit", or the end of stdin
    finally:
        board.close()


if __name__ == "__main__":
    main()
