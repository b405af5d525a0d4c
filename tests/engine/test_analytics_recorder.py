"""The recorder beside the show (engine/analytics/recorder.py): interactions the curator marked, states entered
and cues run reach the measures; the stop folds visitors still in view and writes everything to the database."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from engine.analytics.folding import Seen
from engine.analytics.recorder import AnalyticsRecorder
from engine.analytics.records import HOUR
from engine.analytics.settings import AnalyticsSettings
from engine.signals import SignalStore

T0 = 400 * HOUR + 60.0


async def test_interactions_states_and_cues_are_counted_and_the_stop_writes_them(tmp_path: Path):
    wall = [T0]
    settings = AnalyticsSettings.model_validate({"interactions": ["plinth.button"]})
    recorder = AnalyticsRecorder("hall", settings, tmp_path, simulated=False, wall=lambda: wall[0])
    store = SignalStore()
    store.declare("plinth.button", "bool")
    store.declare("states.mode", "str")
    cues = SimpleNamespace(listeners=[])
    recorder.bind(store, ["mode"], ["body"])
    recorder.follow_cues({"evening": cues})  # type: ignore[dict-item]
    recorder.measures.frame("body", T0, [Seen(1), Seen(2)])
    store.set("plinth.button", True)
    store.set("plinth.button", False)  # a release is no interaction
    store.set("states.mode", "finale")
    for listener in cues.listeners:
        listener(SimpleNamespace(id="2", length=0.0))
    for step in range(1, 61):  # half a minute in view, a frame every half second
        wall[0] = T0 + step / 2
        recorder.measures.frame("body", wall[0], [Seen(1), Seen(2)])
    await asyncio.to_thread(recorder.close)  # folds the two visitors still in view, writes, closes
    totals = {(r.measure, r.key): r.value for r in recorder.writer.store.totals("hall", 0, 1000 * HOUR)}
    assert totals[("interactions", "plinth.button")] == 1
    assert totals[("engaged_state", "mode:finale")] == 2
    assert totals[("engaged_cue", "evening:2")] == 2
    assert totals[("visitors", "body")] == 2 and totals[("stopped", "body")] == 2
    assert recorder.path == tmp_path / "analytics.sqlite"
