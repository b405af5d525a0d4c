"""From send and receive times to figures, and the figures as JSON or a table."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from typing import TypedDict

import numpy as np

P99_LIMIT_MS = 2.0
P99_RATIO_LIMIT = 1.25


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


def as_json(results: dict[str, Figure]) -> str:
    return json.dumps(results)


def as_table(results: dict[str, Figure], engine: Latencies, baseline: Latencies) -> str:
    lines = [f"{'figure':<26} {'value':>10} {'baseline':>10} {'ratio':>7}  unit"]
    for name, fig in results.items():
        lines.append(f"{name:<26} {fig['value']:>10.3f} {fig['baseline']:>10.3f} {fig['ratio']:>7.2f}  {fig['unit']}")
    lines.append("")
    lines.append(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}; samples: "
        f"engine {len(engine.ms)}/{engine.measured} measured messages arrived, "
        f"baseline {len(baseline.ms)}/{baseline.measured}"
    )
    p99 = results["osc_to_mqtt_latency_p99"]
    lines.append(f"target: p99 at most {P99_LIMIT_MS:g} ms and at most {P99_RATIO_LIMIT:g}x the baseline")
    lines.append(f"  p99 at most {P99_LIMIT_MS:g} ms: {verdict(p99['value'] <= P99_LIMIT_MS)} ({p99['value']:.3f} ms)")
    lines.append(
        f"  p99 at most {P99_RATIO_LIMIT:g}x the baseline: {verdict(p99['ratio'] <= P99_RATIO_LIMIT)} "
        f"({p99['ratio']:.2f}x)"
    )
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"
