"""``launcher.py bench``: analytics figures (issue 17).

``analytics_cost_ratio``: the pose pipeline's frame time with analytics over without. MediaPipe finds the four
visitors of the bench's four-people video once; its inference time per frame is measured then. The pipeline's own
work on those very frames (tracking, smoothing, features, gestures, zones: ``PosePipeline.process``) is timed many
times over, alternately without and with analytics fed, so the small difference is not lost in inference's noise;
the ratio is (inference + pipeline with analytics) / (inference + pipeline without).

``analytics_disk_bytes_per_visitor``: a day of visitors (on virtual wall time) through the measures into a real
SQLite store, flushed each minute as the runtime does; the database's bytes on disk over the visitors. Baseline: the
bytes a per-visitor log (one CSV line per visitor: id, times, zone) would take, what analytics must never keep.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.analytics.folding import Measures, Seen
from engine.analytics.records import HOUR
from engine.analytics.settings import AnalyticsSettings
from engine.analytics.store import AnalyticsStore, AnalyticsWriter, database_path
from engine.clock import MonotonicClock
from engine.signals import SignalStore
from sensors.pose import models
from sensors.pose.driver import PoseSensorConfig
from sensors.pose.inference import PoseEstimator
from sensors.pose.pipeline import PosePipeline
from sensors.pose.types import PoseFrame
from tests.bench.procs import BenchError
from tests.bench.results import Figure, figure
from tests.bench.scenes import four_people

log = logging.getLogger("bench")

SENSOR = "body"
DAY = 24 * HOUR


@dataclass(frozen=True)
class AnalyticsPlan:
    frames: int
    """Video frames through MediaPipe (their landmarks are then reused)."""
    rounds: int
    """Alternating rounds of the pipeline over those frames, without and with analytics."""
    visitors_per_hour: int


QUICK_ANALYTICS = AnalyticsPlan(frames=30, rounds=10, visitors_per_hour=60)
FULL_ANALYTICS = AnalyticsPlan(frames=90, rounds=40, visitors_per_hour=120)


@dataclass(frozen=True)
class AnalyticsResults:
    inference_ms: float
    pipeline_ms: float
    pipeline_analytics_ms: float
    people: float
    visitors: int
    disk_bytes: int
    log_bytes: int


def run_analytics(plan: AnalyticsPlan) -> AnalyticsResults:
    frames, inference_ms = inferred(plan.frames)
    people = statistics.fmean(len(f.people) for f in frames)
    if people == 0:
        raise BenchError("MediaPipe found nobody in the four-people video; the analytics figure would mean nothing")
    without, with_analytics = pipeline_times(frames, plan.rounds)
    visitors, disk, per_visitor_log = day_on_disk(plan.visitors_per_hour)
    log.info(
        "analytics: inference %.2f ms/frame, pipeline %.3f ms without and %.3f ms with analytics (%.1f people); "
        "%d visitors in %d bytes",
        inference_ms, without, with_analytics, people, visitors, disk,
    )  # fmt: skip
    return AnalyticsResults(inference_ms, without, with_analytics, people, visitors, disk, per_visitor_log)


def inferred(count: int) -> tuple[list[PoseFrame], float]:
    """The four-people video's frames as MediaPipe sees them, and its mean inference time per frame (ms)."""
    estimator = PoseEstimator(models.resolve("full"), num_poses=4)
    frames, spent = [], []
    try:
        for index, image in enumerate(four_people(count)):
            started = time.perf_counter()
            people = estimator.estimate(image, index / 30)
            spent.append(time.perf_counter() - started)
            frames.append(PoseFrame(index, index / 30, image.shape[1], image.shape[0], people))
    finally:
        estimator.close()
    return frames, statistics.fmean(spent[5:] or spent) * 1000  # the first frames warm the model up


def pipeline_times(frames: list[PoseFrame], rounds: int) -> tuple[float, float]:
    """Mean ms per frame of ``PosePipeline.process`` without and with analytics, alternating rounds."""
    config = PoseSensorConfig.model_validate({"kind": "pose", "source": {"camera": 0}})
    without: list[float] = []
    with_analytics: list[float] = []
    wall = [0.0]
    for round_index in range(rounds):
        for fed, spent in ((False, without), (True, with_analytics)):
            clock = MonotonicClock()
            store = SignalStore(clock)
            for name, kind in config.signal_types().items():
                store.declare(f"{SENSOR}.{name}", kind)
            measures = Measures("bench", AnalyticsSettings()) if fed else None
            pipeline = PosePipeline(SENSOR, config.pipeline_settings(), store, measures, lambda: wall[0])
            offset = round_index * len(frames) / 30
            started = time.perf_counter()
            for frame in frames:
                wall[0] = offset + frame.timestamp
                pipeline.process(
                    PoseFrame(frame.index, offset + frame.timestamp, frame.width, frame.height, frame.people)
                )
            spent.append((time.perf_counter() - started) / len(frames))
    return statistics.median(without) * 1000, statistics.median(with_analytics) * 1000


def day_on_disk(per_hour: int) -> tuple[int, int, int]:
    """A day of visitors (each 1 to 60 s in view, at 10 frames a second, some in a zone) through the measures into
    a real store, flushed every minute; (visitors, database bytes, bytes of a per-visitor CSV log)."""
    rng = np.random.default_rng(17)
    settings = AnalyticsSettings()
    measures = Measures("bench", settings)
    visitors = 0
    log_bytes = 0
    with tempfile.TemporaryDirectory(prefix="exhibit-bench-analytics-") as tmp:
        path = database_path(Path(tmp), simulated=False)
        writer = AnalyticsWriter(AnalyticsStore(path))
        start = 1_798_761_600.0  # a midnight, UTC
        arrivals = sorted(start + rng.uniform(0, DAY, per_hour * 24))
        stays = rng.uniform(1, 60, len(arrivals))
        leaving: list[tuple[float, int]] = []
        open_ids: dict[int, tuple[float, float, frozenset[str]]] = {}
        next_flush = start + 60
        t = start
        index = 0
        while t < start + DAY or open_ids:
            while index < len(arrivals) and arrivals[index] <= t:
                zone = frozenset({"plinth"}) if index % 3 == 0 else frozenset()
                open_ids[index + 1] = (arrivals[index] + stays[index], float(rng.uniform(0, 5)), zone)
                index += 1
            seen = [Seen(i, (x, 2.0), zone) for i, (_, x, zone) in open_ids.items()]
            measures.frame(SENSOR, t, seen)
            for visitor, (until, _, zone) in list(open_ids.items()):
                if until <= t:
                    del open_ids[visitor]
                    measures.left(SENSOR, visitor, t)
                    visitors += 1
                    log_bytes += len(f"{visitor},{until - stays[visitor - 1]:.1f},{until:.1f},{'|'.join(zone)}\n")
                    leaving.append((t, visitor))
            if t >= next_flush:
                writer.submit(measures.flush(t))
                next_flush += 60
            t += 0.1
        writer.submit(measures.flush(t))
        writer.close(timeout=30)
        disk = sum(p.stat().st_size for p in Path(tmp).iterdir() if p.name.startswith(path.name))
    return visitors, disk, log_bytes


def analytics_figures(results: AnalyticsResults) -> dict[str, Figure]:
    frame = results.inference_ms + results.pipeline_ms
    return {
        "analytics_cost_ratio": figure((results.inference_ms + results.pipeline_analytics_ms) / frame, 1.0, "ratio"),
        "analytics_disk_bytes_per_visitor": figure(
            results.disk_bytes / results.visitors, results.log_bytes / results.visitors, "bytes"
        ),
    }


def analytics_samples(results: AnalyticsResults) -> list[str]:
    return [
        f"analytics_cost_ratio: MediaPipe (full model, 4 poses) {results.inference_ms:.2f} ms a frame on the "
        f"four-people video ({results.people:.1f} people a frame); the pipeline's own work "
        f"{results.pipeline_ms:.3f} ms without analytics and {results.pipeline_analytics_ms:.3f} ms with "
        "(medians of alternating rounds over the same frames); baseline 1.0, a frame without analytics",
        f"analytics_disk_bytes_per_visitor: {results.visitors} visitors in a day (1 to 60 s each, a third in a zone) "
        f"through the measures into a real SQLite store flushed every minute: {results.disk_bytes} bytes on disk; "
        f"baseline: a per-visitor CSV log ({results.log_bytes} bytes), which analytics never keeps",
        "target: analytics_cost_ratio at most 1.02; analytics_disk_bytes_per_visitor at most 200",
    ]
