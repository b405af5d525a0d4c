"""A thousand phones (issue 19): real WebSocket clients from four separate processes on loopback, each tapping
twice a second and voting once, against the audience server's process. Every tap they sent is counted, every
phone's vote is in, and the crowd's signals keep their rate throughout. The phones' processes run in the idle
scheduling class, as the server does: they stand in for phones, which are other machines, and at a normal
priority they would take the cores from a server that gives way to everything else."""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import subprocess
import sys

from sensors.audience.server import SetProps
from tests.conftest import ROOT
from tests.sensors.test_audience_server import Server

PROCESSES, PHONES, RATE, SECONDS = 4, 250, 2.0, 15.0


async def test_a_thousand_phones_tapping_are_all_counted_at_a_steady_rate():
    server = Server(max_phones=1500, rate=10)
    await server.process.start(30.0)
    try:
        server.process.send(SetProps({"season.open": True}))
        await asyncio.sleep(0.3)
        command = [
            "chrt", "--idle", "0", sys.executable, "-m", "tests.support.phones", f"ws://127.0.0.1:{server.port}/ws",
            "--phones", str(PHONES), "--rate", str(RATE), "--seconds", str(SECONDS), "--vote", "season",
        ]  # fmt: skip
        started = len(server.frames)
        crowds = [
            await asyncio.create_subprocess_exec(*command, cwd=ROOT, stdout=subprocess.PIPE) for _ in range(PROCESSES)
        ]
        outputs = [await crowd.communicate() for crowd in crowds]
        during, times = server.frames[started:], server.times[started:]
        await asyncio.sleep(0.5)
        signals, health = server.frames[-1]
    finally:
        await server.process.close()
    tallies = [json.loads(out) for out, _ in outputs]
    connected = sum(t["connected"] for t in tallies)
    sent = sum(t["sent"] for t in tallies)
    assert connected == PROCESSES * PHONES and not any(t["errors"] or t["refused"] for t in tallies), tallies
    assert signals["lantern.taps"] == sent, f"the server counted {signals['lantern.taps']} of {sent} taps"
    assert signals["season.votes"] == connected and health["dropped"] == 0
    peak = max(frame["count"] for frame, _ in during)
    assert peak == connected
    busy = [frame["lantern.taps_per_s"] for frame, _ in during if frame["count"] == connected]
    assert statistics.median(busy) >= 0.8 * connected * RATE, statistics.median(busy)
    gaps = sorted(b - a for a, b in itertools.pairwise(times))
    assert len(during) / (times[-1] - times[0]) >= 9.5, "the crowd's signals came less than 10 times a second"
    assert gaps[int(0.99 * len(gaps))] <= 0.2, f"a gap of {gaps[-1]:.3f} s between the crowd's signals"
