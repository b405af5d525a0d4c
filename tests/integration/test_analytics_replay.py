"""Analytics from a known script (issue 17, "Done means", first bullet): a landmark recording in which visitors
enter, stop, raise their hands and leave at known times is replayed through the real pose sensor of a real
runtime on virtual time, with analytics on and a state folder; after a clean stop the SQLite database holds
exactly what the script says, computed here from the script alone (never from the folding code): counts exact,
times within one frame per visitor.

The script (30 frames a second, a frame's time is its index / 30; wall time starts at 10:59:45 UTC so that the
show crosses an hour, and the measures must be split at it):

====  =======================  ===================================================================
who   in view (s)              what
====  =======================  ===================================================================
A     0.0 - 1.5                walks across the left of the picture: seen, never stops
B     2.5 - 23.0               stands on the right, raises both hands from 8.0 to 10.0: stops
                               (20.5 s, bucket 20), one `raise_both_hands`, crosses 11:00
C     20.0 - 27.5              stands in the zone `plinth`: stops (7.5 s, bucket 7); with B, two in
                               view at once
====  =======================  ===================================================================

The recording runs on to 29 s with nobody in view, so the tracker says that C left.
"""

from __future__ import annotations

import datetime
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.analytics.store import AnalyticsStore, database_path
from engine.clock import VirtualClock
from engine.runtime import RuntimeOptions, assemble
from engine.validate import validate_text
from launcher import build_registry
from sensors.pose.recording import RecordingWriter
from sensors.pose.types import Landmarks, PoseFrame
from tests.support.pose_synth import blend, jitter, person

FPS = 30
FRAME = 1.0 / FPS
WIDTH, HEIGHT = 640, 360  # 16:9, as pose_synth's bodies are drawn
WALL_START = datetime.datetime(2026, 3, 14, 10, 59, 45, tzinfo=datetime.UTC)
END_FRAME = 870
"""The recording's last frame (29 s): everyone has left and the tracker has said so."""
STOP_AFTER = 2.0
HEATMAP_CELL = 1.0
FLOOR_SIZE = (4.0, 3.0)
"""The whole picture maps onto a 4 m x 3 m floor: image x * 4, image y * 3 (metres)."""
ZONE = ((0.25, 0.6), (0.45, 0.6), (0.45, 1.0), (0.25, 1.0))
"""The zone `plinth`, in image coordinates (feet must stand inside)."""
SCALE = 0.12
CY = 0.55
FEET_Y = CY + 2.25 * SCALE
"""Where pose_synth's bodies have their feet (the mean of ankles and heels, 2.25 torso units below the hips)."""
ARMS_UP = (8.0, 10.0)
"""B's hands are up (fully, after a 0.2 s rise) over this span."""


@dataclass(frozen=True)
class Visitor:
    name: str
    first: int
    """First frame in view."""
    last: int
    """Last frame in view (inclusive)."""
    x: Callable[[float], float]
    """Where their feet are across the image at time t (s)."""
    hands_up: tuple[float, float] | None = None

    def seen(self, k: int) -> bool:
        return self.first <= k <= self.last

    def landmarks(self, k: int, rng: np.random.Generator) -> Landmarks:
        t = k / FPS
        down = person(cx=self.x(t), cy=CY, scale=SCALE)
        if self.hands_up is None:
            return jitter(down, rng)
        start, end = self.hands_up
        up = person(cx=self.x(t), cy=CY, scale=SCALE, arms="up")
        rise = min(1.0, max(0.0, (t - start) / 0.2)) - min(1.0, max(0.0, (t - end) / 0.2))
        return jitter(blend(down, up, rise), rng)


SCRIPT = (
    Visitor("A", 0, 45, lambda t: 0.05 + 0.1 * t),  # 0.05 -> 0.20 of the width, in 1.5 s
    Visitor("B", 75, 690, lambda t: 0.78, hands_up=ARMS_UP),
    Visitor("C", 600, 825, lambda t: 0.35),
)

EXHIBIT = f"""\
format_version: 1
id: replayed
title: {{en: Analytics from a known script}}
sensors:
  body:
    kind: pose
    source: {{replay: script.jsonl.gz, loop: false}}
    num_poses: 4
    floor:
      image_points: [[0, 0], [1, 0], [1, 1], [0, 1]]
      floor_points: [[0, 0], [{FLOOR_SIZE[0]}, 0], [{FLOOR_SIZE[0]}, {FLOOR_SIZE[1]}], [0, {FLOOR_SIZE[1]}]]
    zones:
      plinth: {{polygon: {[list(p) for p in ZONE]}}}
analytics:
  stop_after: {STOP_AFTER}s
  heatmap_cell: {HEATMAP_CELL}
  interactions: [body.raise_both_hands, body.wave]
"""


def write_script(path: Path) -> None:
    rng = np.random.default_rng(17)
    with RecordingWriter(path, width=WIDTH, height=HEIGHT, source="analytics script") as writer:
        for k in range(END_FRAME + 1):
            people = tuple(v.landmarks(k, rng) for v in SCRIPT if v.seen(k))
            writer.write(PoseFrame(k, k / FPS, WIDTH, HEIGHT, people))


# --- what the script says, computed from the script alone ---------------------------------------------------------


def hour_start(t: float) -> int:
    wall = WALL_START.timestamp() + t
    return int(wall // 3600 * 3600)


def split_by_hour(first: float, last: float) -> dict[int, float]:
    """Seconds of [first, last] (script times) in each wall-clock hour."""
    parts: dict[int, float] = defaultdict(float)
    t = first
    while t < last:
        hour = hour_start(t)
        end = min(last, hour + 3600 - WALL_START.timestamp())
        parts[hour] += end - t
        t = end
    return parts


def in_zone(x: float, y: float) -> bool:
    xs, ys = [p[0] for p in ZONE], [p[1] for p in ZONE]
    return min(xs) < x < max(xs) and min(ys) < y < max(ys)


def cell(x: float, y: float) -> str:
    return f"{math.floor(x * FLOOR_SIZE[0] / HEATMAP_CELL)},{math.floor(y * FLOOR_SIZE[1] / HEATMAP_CELL)}"


def expected() -> dict[tuple[int, str, str], float]:
    """Every (hour, measure, key) the script must leave in the database, with its value."""
    want: dict[tuple[int, str, str], float] = defaultdict(float)
    for v in SCRIPT:
        first, last = v.first / FPS, v.last / FPS
        stay = last - first
        left_in = hour_start(last)  # counted in the hour they were last seen
        want[left_in, "visitors", "body"] += 1
        if stay >= STOP_AFTER:
            want[left_in, "stopped", "body"] += 1
            want[left_in, "holding_s", str(int(stay))] += 1
        for hour, seconds in split_by_hour(first, last).items():
            want[hour, "occupancy_s", "body"] += seconds
            # Each visitor stands wholly inside or outside the zone, and in one floor cell (checked below).
            if in_zone(v.x(first), FEET_Y):
                want[hour, "zone_dwell_s", "plinth"] += seconds
            want[hour, "heatmap", cell(v.x(first), FEET_Y)] += seconds
        if in_zone(v.x(first), FEET_Y):
            want[left_in, "zone_visitors", "plinth"] += 1
        want[left_in, "heatmap_visitors", cell(v.x(first), FEET_Y)] += 1
        if v.hands_up is not None:
            want[hour_start(v.hands_up[0]), "interactions", "body.raise_both_hands"] += 1
    for k in range(END_FRAME + 1):
        hour = hour_start(k / FPS)
        present = sum(v.seen(k) for v in SCRIPT)
        want[hour, "occupancy_peak", "body"] = max(want[hour, "occupancy_peak", "body"], present)
    return {slot: value for slot, value in want.items() if value}


def test_the_script_is_what_it_says():
    """The script's own facts, so that the expectations above rest on them: one cell and one side of the zone
    per visitor, an hour crossed, two in view at once."""
    for v in SCRIPT:
        xs = [v.x(k / FPS) for k in range(v.first, v.last + 1)]
        assert len({cell(x, FEET_Y) for x in xs}) == 1, v.name
        assert len({in_zone(x, FEET_Y) for x in xs}) == 1, v.name
    assert len({hour_start(0), hour_start(END_FRAME / FPS)}) == 2
    want = expected()
    assert max(value for (_, measure, _), value in want.items() if measure == "occupancy_peak") == 2


async def test_replayed_script_gives_the_measures_it_should(tmp_path: Path):
    write_script(tmp_path / "script.jsonl.gz")
    registry = build_registry()
    exhibit = validate_text(EXHIBIT, str(tmp_path / "exhibit.yaml"), registry)
    state = tmp_path / "state"
    clock = VirtualClock(wall=WALL_START)
    runtime = assemble(
        exhibit,
        registry,
        RuntimeOptions(base_dir=tmp_path, state_dir=state, simulate=False, console=False, embedded_port=0),
        clock=clock,
    )
    gestures: list[tuple[float, object]] = []
    await runtime.start()
    try:
        assert runtime.analytics is not None, "analytics are on with a state folder"
        runtime.store.subscribe("body.raise_both_hands", lambda s: gestures.append((clock.now(), s.value)))
        for _ in range(END_FRAME // FPS + 2):  # a second at a time, to the end of the recording and past it
            await clock.advance(1.0)
        sensor = runtime.sensors["body"]
        assert sensor.frames == END_FRAME + 1  # type: ignore[attr-defined]
        assert runtime.analytics.measures.in_view() == 0  # everyone left, as the tracker said
    finally:
        await runtime.stop()  # the recorder's close: the last aggregates written, the database closed

    assert len(gestures) == 1 and ARMS_UP[0] < gestures[0][0] < ARMS_UP[0] + 1.0, gestures  # the script's one gesture
    path = database_path(state, simulated=False)
    assert path.name == "analytics.sqlite" and not database_path(state, simulated=True).exists()
    store = AnalyticsStore(path)
    try:
        since = hour_start(0) - 3600
        totals = store.totals("replayed", since, since + 3 * 3600)
    finally:
        store.close()
    assert totals.simulated is False
    got = {(r.start, r.measure, r.key): r.value for r in totals}
    want = expected()

    assert got.keys() == want.keys(), (
        f"missing {sorted(want.keys() - got.keys())}, extra {sorted(got.keys() - want.keys())}"
    )
    timed = {"occupancy_s", "zone_dwell_s", "heatmap"}
    for slot, value in sorted(want.items()):
        hour, measure, _ = slot
        if measure in timed:
            visitors = sum(1 for v in SCRIPT if hour_start(v.first / FPS) <= hour <= hour_start(v.last / FPS))
            assert abs(got[slot] - value) <= FRAME * visitors + 1e-6, (slot, got[slot], value)
        else:
            assert got[slot] == value, (slot, got[slot], value)  # counts exact
