"""Writes the flagship's simulated visitors: ``exhibits/canal-lanterns/recordings/visitors.jsonl.gz``.

A scripted 34-second session in the landmark recording format, made from the
synthetic bodies of ``tests/pose_synth.py`` (no camera, no person filmed):
a visitor walks in, raises both hands, waves, lowers them; a second visitor
arrives and makes a T; the first steps forward and lifts one hand to
different heights; both leave. ``--simulate`` replays it in a loop.

    python -m tests.support.make_flagship_session
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from sensors.pose.recording import RecordingWriter
from sensors.pose.types import Landmark, Landmarks, PoseFrame
from tests.support.pose_synth import blend, jitter, person, ramp, set_point

OUT = Path(__file__).resolve().parents[2] / "exhibits" / "canal-lanterns" / "recordings" / "visitors.jsonl.gz"
FPS = 30
DURATION = 34.0
ASPECT = 640 / 480


def visitor_a(t: float) -> Landmarks | None:
    if not 2.0 <= t < 29.0:
        return None
    x = -0.1 + 0.45 * ramp(t, 2.0, 4.0) - 0.5 * ramp(t, 25.0, 4.0)  # walks in, later walks out to the left
    step = ramp(t, 20.0, 1.0) - ramp(t, 24.0, 1.0)  # a step towards the camera and back
    scale, cy = 0.16 * (1 + 0.3 * step), 0.62 + 0.05 * step
    down = person(x, cy, scale, aspect=ASPECT)
    up = person(x, cy, scale, arms="up", aspect=ASPECT)
    pose = blend(down, up, ramp(t, 6.0, 2.0) - ramp(t, 9.0, 1.0))
    if 10.0 <= t < 13.0:  # wave with the right hand
        hand = person(x, cy, scale, right_arm="up", left_arm="down", aspect=ASPECT)
        wx, wy = (float(v) for v in hand[Landmark.RIGHT_WRIST, :2])
        pose = set_point(hand, Landmark.RIGHT_WRIST, wx + 0.05 * math.sin(2 * math.pi * 2.0 * t), wy)
    if 16.0 <= t < 20.0:  # one hand slowly up and down: the colour follows it
        raised = person(x, cy, scale, left_arm="up", right_arm="down", aspect=ASPECT)
        pose = blend(down, raised, 0.5 - 0.5 * math.cos(math.pi * (t - 16.0)))
    return pose


def visitor_b(t: float) -> Landmarks | None:
    if not 12.0 <= t < 28.0:
        return None
    x = 1.1 - 0.4 * ramp(t, 12.0, 3.0) + 0.5 * ramp(t, 24.0, 4.0)
    down = person(x, 0.6, 0.14, aspect=ASPECT)
    t_pose = person(x, 0.6, 0.14, arms="t", aspect=ASPECT)
    return blend(down, t_pose, ramp(t, 16.0, 0.5) - ramp(t, 19.0, 0.5))


def main() -> None:
    rng = np.random.default_rng(2026)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with RecordingWriter(OUT, width=640, height=480, source="synthetic session (tests/make_flagship_session.py)") as w:
        for k in range(int(DURATION * FPS)):
            t = k / FPS
            people = tuple(jitter(p, rng) for p in (visitor_a(t), visitor_b(t)) if p is not None)
            # People at the edge of the frame are partly outside it, as a camera would see them.
            people = tuple(p for p in people if 0.02 < float(np.median(p[:, 0])) < 0.98)
            w.write(PoseFrame(k, t, 640, 480, people))
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
