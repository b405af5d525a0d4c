"""OSC over a TCP stream: packets framed with SLIP (OSC 1.1, QLab, Companion, TouchOSC) or with a
4-byte big-endian length before each one (OSC 1.0; what liblo's ``oscsend osc.tcp://`` sends).

A connection's first byte says which: a SLIP stream starts with END (0xC0) or with the packet itself
(``/`` or ``#bundle``); a length prefix starts with 0x00 for any packet under 16 MiB. Replies go back
in the framing the client spoke. Frames larger than ``limit`` are refused, never buffered without end.
"""

from __future__ import annotations

import struct
from typing import Literal

from pythonosc import slip

Framing = Literal["slip", "length"]
END = 0xC0


def framing_of(first: int) -> Framing:
    """The framing a stream uses, from its first byte."""
    return "length" if first == 0 else "slip"


def frame(packet: bytes, framing: Framing) -> bytes:
    if framing == "slip":
        return slip.encode(packet)  # END before and after: the double-END form QLab sends
    return struct.pack(">I", len(packet)) + packet


class FrameSplitter:
    """Cuts a byte stream into packets. ``feed`` returns the complete packets and how many frames were
    malformed (a bad SLIP escape, a frame over ``limit``); ``broken`` is set when a length-prefixed
    stream can no longer be followed (a length over ``limit``): the connection must end."""

    def __init__(self, limit: int = 65536) -> None:
        self.limit = limit
        self.framing: Framing | None = None
        self.broken = False
        self._buffer = bytearray()
        self._skipping = False
        """SLIP: the current frame grew past the limit; its bytes are dropped up to the next END."""

    def feed(self, data: bytes) -> tuple[list[bytes], int]:
        if not data or self.broken:
            return [], 0
        if self.framing is None:
            self.framing = framing_of(data[0])
        if self.framing == "slip":
            return self._slip(data)
        return self._length(data)

    def _slip(self, data: bytes) -> tuple[list[bytes], int]:
        packets: list[bytes] = []
        bad = 0
        start = 0
        while start <= len(data):
            end = data.find(END, start)
            chunk = data[start:] if end < 0 else data[start:end]
            if self._skipping:
                pass
            elif len(self._buffer) + len(chunk) > self.limit:
                self._skipping = True
                self._buffer.clear()
                bad += 1
            else:
                self._buffer += chunk
            if end < 0:
                break
            if self._buffer:  # an empty frame is the second END of a double-END pair: nothing to do
                try:
                    packets.append(slip.decode(bytes(self._buffer)))
                except slip.ProtocolError:
                    bad += 1
            self._buffer.clear()
            self._skipping = False
            start = end + 1
        return packets, bad

    def _length(self, data: bytes) -> tuple[list[bytes], int]:
        self._buffer += data
        packets: list[bytes] = []
        while len(self._buffer) >= 4:
            (size,) = struct.unpack_from(">I", self._buffer)
            if size > self.limit:
                self.broken = True
                self._buffer.clear()
                return packets, 1
            if len(self._buffer) < 4 + size:
                break
            packets.append(bytes(self._buffer[4 : 4 + size]))
            del self._buffer[: 4 + size]
        return packets, 0
