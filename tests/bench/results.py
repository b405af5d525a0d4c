"""From send and receive times (OSC) and frame times (pose) to figures, and the figures as JSON or a table."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from typing import TypedDict

import numpy as np

P99_LIMIT_MS = 2.0
P99_RATIO_LIMIT = 1.25
POSE_FPS_1P_LIMIT = 30.0
POSE_FPS_1P_RATIO_LIMIT = 0.9
POSE_FPS_4P_LIMIT = 15.0


@dataclass(frozen=True)
class Latencies:
    """One path's latencies (ms) over the measured sequence numbers that arrived."""

    ms: np.ndarray
    measured: int
    """How many measured (non-warm-up) messages were sent."""

    @property
    def delivered(self) -> float:
        return len(self.ms) / self.measured

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.ms, q))


def latencies(sent_ns: np.ndarray, received: np.ndarray, warmup: int) -> Latencies:
    """``sent_ns[i]`` is when N = i + 1 was sent; ``received`` holds ``(N, monotonic_ns)`` rows.

    Only the first arrival of each N counts (QoS 1 may deliver twice); N = 0 is
    the engine's safe state, not a message of ours.
    """
    count = len(sent_ns)
    first: dict[int, int] = {}
    for value, at in received.tolist():
        if warmup < value <= count and value not in first:
            first[value] = at
    seqs = np.fromiter(first, dtype=np.int64, count=len(first))
    arrived = np.fromiter(first.values(), dtype=np.int64, count=len(first))
    ms = (arrived - sent_ns[seqs - 1]) / 1e6
    return Latencies(ms=ms, measured=count - warmup)


@dataclass(frozen=True)
class PoseRun:
    """One pass over a video: per frame, when its result was out, its latency and how many people were found.

    The first ``warmup`` frames (model warm-up, thread start) count for nothing.
    """

    done: np.ndarray
    """Monotonic seconds at which each frame's result was out (signals set, or landmarks returned)."""
    latency_ms: np.ndarray
    """From the frame's capture stamp to ``done``; meaningful for paced runs only."""
    people: np.ndarray
    warmup: int
    num_poses: int

    @property
    def frames(self) -> int:
        """How many frames were timed (after the warm-up)."""
        return len(self.done) - self.warmup

    @property
    def fps(self) -> float:
        """Timed frames over the time from the last warm-up result to the last result."""
        return self.frames / float(self.done[-1] - self.done[self.warmup - 1])

    @property
    def mean_people(self) -> float:
        return float(np.mean(self.people[self.warmup :]))

    def latency(self, q: float) -> float:
        return float(np.percentile(self.latency_ms[self.warmup :], q))


@dataclass(frozen=True)
class PoseComparison:
    """The whole pipeline (a ``PoseSensor``) and a bare ``PoseLandmarker`` loop on the same frames."""

    pipeline: PoseRun
    baseline: PoseRun


@dataclass(frozen=True)
class PoseResults:
    one: PoseComparison
    """One person, num_poses=1, frames as fast as they come."""
    four: PoseComparison
    """Four people, num_poses=4."""
    latency: PoseComparison
    """One person, num_poses=1, paced at the video's 30 fps as a camera would be."""
    one_numposes4: PoseComparison | None = None
    """One person with the exhibit's default num_poses=4 (informative)."""


class Figure(TypedDict):
    value: float
    unit: str
    baseline: float
    ratio: float


def figure(value: float, baseline: float, unit: str) -> Figure:
    return {"value": value, "unit": unit, "baseline": baseline, "ratio": value / baseline}


def figures(engine: Latencies, baseline: Latencies) -> dict[str, Figure]:
    return {
        "osc_to_mqtt_latency_p50": figure(engine.percentile(50), baseline.percentile(50), "ms"),
        "osc_to_mqtt_latency_p99": figure(engine.percentile(99), baseline.percentile(99), "ms"),
        "osc_to_mqtt_delivered": figure(engine.delivered, baseline.delivered, "ratio"),
    }


def pose_figures(pose: PoseResults) -> dict[str, Figure]:
    one, four = pose.one, pose.four
    results = {
        "pose_fps_1p": figure(one.pipeline.fps, one.baseline.fps, "fps"),
        "pose_fps_4p": figure(four.pipeline.fps, four.baseline.fps, "fps"),
        "pose_latency_p50": figure(pose.latency.pipeline.latency(50), pose.latency.baseline.latency(50), "ms"),
        "pose_people_4p": figure(four.pipeline.mean_people, four.baseline.mean_people, "people"),
    }
    if pose.one_numposes4 is not None:
        many = pose.one_numposes4
        results["pose_fps_1p_numposes4"] = figure(many.pipeline.fps, many.baseline.fps, "fps")
    return results


def as_json(results: dict[str, Figure]) -> str:
    return json.dumps(results)


def as_table(
    results: dict[str, Figure], engine: Latencies, baseline: Latencies, pose: PoseResults | None = None
) -> str:
    lines = [f"{'figure':<26} {'value':>10} {'baseline':>10} {'ratio':>7}  unit"]
    for name, fig in results.items():
        lines.append(f"{name:<26} {fig['value']:>10.3f} {fig['baseline']:>10.3f} {fig['ratio']:>7.2f}  {fig['unit']}")
    lines.append("")
    lines.append(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}; samples: "
        f"engine {len(engine.ms)}/{engine.measured} measured messages arrived, "
        f"baseline {len(baseline.ms)}/{baseline.measured}"
    )
    if pose is not None:
        lines += pose_samples(pose)
    lines += osc_targets(results)
    if pose is not None:
        lines += pose_targets(results, pose)
    return "\n".join(lines)


def osc_targets(results: dict[str, Figure]) -> list[str]:
    p99 = results["osc_to_mqtt_latency_p99"]
    return [
        f"target: p99 at most {P99_LIMIT_MS:g} ms and at most {P99_RATIO_LIMIT:g}x the baseline",
        f"  p99 at most {P99_LIMIT_MS:g} ms: {verdict(p99['value'] <= P99_LIMIT_MS)} ({p99['value']:.3f} ms)",
        f"  p99 at most {P99_RATIO_LIMIT:g}x the baseline: {verdict(p99['ratio'] <= P99_RATIO_LIMIT)} "
        f"({p99['ratio']:.2f}x)",
    ]


def pose_samples(pose: PoseResults) -> list[str]:
    """What the pose figures were measured on, so a reader can judge them."""
    one, four, paced = pose.one.pipeline, pose.four.pipeline, pose.latency.pipeline
    lines = [
        f"pose: 640x480 MJPEG video, shipped `full` model; {one.warmup} warm-up frames left out of every run; "
        "baseline: a bare PoseLandmarker loop (cv2 decode + detect_for_video) over the same frames",
        f"  pose_fps_1p: {one.frames} frames, num_poses={one.num_poses}, {one.mean_people:.2f} people found per frame",
        f"  pose_fps_4p: {four.frames} frames, num_poses={four.num_poses}, "
        f"{four.mean_people:.2f} people found per frame (baseline {pose.four.baseline.mean_people:.2f}): "
        "see pose_people_4p",
        f"  pose_latency_p50: {paced.frames} frames paced at 30 fps, num_poses={paced.num_poses}, "
        f"from capture (frame decoded) to signals set, p99 {paced.latency(99):.1f} ms; "
        f"baseline: capture to landmarks, p99 {pose.latency.baseline.latency(99):.1f} ms",
        "  num_poses trades speed for capacity: with num_poses=1 MediaPipe stops running its person detector once "
        "it tracks someone; with more it keeps looking for further people on every frame",
    ]
    if pose.one_numposes4 is not None:
        lines.append(
            f"  pose_fps_1p_numposes4: the same one-person video with num_poses=4 (the exhibit's default), "
            f"{pose.one_numposes4.pipeline.frames} frames"
        )
    return lines


def pose_targets(results: dict[str, Figure], pose: PoseResults) -> list[str]:
    one, four = results["pose_fps_1p"], results["pose_fps_4p"]
    people = pose.four.pipeline.mean_people
    return [
        f"target: pose_fps_1p at least {POSE_FPS_1P_LIMIT:g} and at least {POSE_FPS_1P_RATIO_LIMIT:g}x the baseline; "
        f"pose_fps_4p at least {POSE_FPS_4P_LIMIT:g} (on 2 CPU cores)",
        f"  pose_fps_1p at least {POSE_FPS_1P_LIMIT:g}: {verdict(one['value'] >= POSE_FPS_1P_LIMIT)} "
        f"({one['value']:.1f} fps)",
        f"  pose_fps_1p at least {POSE_FPS_1P_RATIO_LIMIT:g}x the baseline: "
        f"{verdict(one['ratio'] >= POSE_FPS_1P_RATIO_LIMIT)} ({one['ratio']:.2f}x)",
        f"  pose_fps_4p at least {POSE_FPS_4P_LIMIT:g}: {verdict(four['value'] >= POSE_FPS_4P_LIMIT)} "
        f"({four['value']:.1f} fps with {people:.2f} people per frame)",
    ]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"
