"""One signal catalogue: what `check` accepts, the render process draws. Found on the flagship: a scene
binding over the visitors' own fields passed `check`, then `shot` (and `run`'s renderer) refused it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from content.bindings import SnapshotResolver, compile_bindings
from content.snapshot_source import SnapshotSource
from engine.catalogue import Catalogue, build_catalogue
from engine.clock import MonotonicClock
from engine.expressions import StoreResolver, compile_expression
from engine.problems import ExhibitInvalid
from engine.signals import SignalStore
from engine.validate import load_exhibit, validate_text
from launcher import build_registry
from tests.conftest import FLAGSHIP, run_launcher
from tests.integration.test_cli import copy_flagship

PER_VISITOR = 'bind: {glow: "0.35 + 0.2 * count(body.visitors, hands_raised > 0.5)"}'


def per_visitor_glow(text: str) -> str:
    old = 'bind: {glow: "0.35 + 0.65 * body.nearest.hands_raised"}'
    assert old in text
    return text.replace(old, PER_VISITOR)


def test_a_per_visitor_binding_that_check_accepts_is_drawn_by_shot(tmp_path: Path):
    exhibit = copy_flagship(tmp_path, per_visitor_glow)
    checked = run_launcher("check", str(exhibit))
    assert checked.returncode == 0, checked.stderr
    out = tmp_path / "shot.png"
    shot = run_launcher("shot", str(exhibit), "--out", str(out), "--at", "4", "--size", "320x180", timeout=120)
    assert shot.returncode == 0, shot.stderr
    assert "Traceback" not in shot.stderr
    picture = np.asarray(Image.open(out))
    assert picture.shape == (180, 320, 3) and picture.std() > 5  # a scene, not an empty buffer


def test_check_refuses_what_the_renderer_would_refuse_at_its_line(tmp_path: Path):
    registry = build_registry()
    text = per_visitor_glow(FLAGSHIP.read_text(encoding="utf-8")).replace("hands_raised > 0.5", "hand_raised > 0.5")
    with pytest.raises(ExhibitInvalid) as invalid:
        validate_text(text, str(FLAGSHIP), registry)
    [problem] = invalid.value.problems
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "hand_raised > 0.5" in row)
    assert problem.line == line and "hand_raised" in problem.message and "hands_raised" in (problem.hint or "")


def flagship() -> tuple[Any, Catalogue, SignalStore]:
    """The flagship, its catalogue, and a store declared from it, as the runtime declares its own."""
    registry = build_registry()
    exhibit = load_exhibit(FLAGSHIP, registry)
    catalogue = build_catalogue(exhibit, registry)
    store = SignalStore()
    catalogue.declare(store)
    return exhibit, catalogue, store


def test_every_name_means_the_same_to_check_the_runtime_and_the_renderer():
    exhibit, catalogue, store = flagship()
    engine_side = StoreResolver(store, aliases=catalogue.aliases, item_fields=catalogue.item_fields)
    render_side = SnapshotResolver(catalogue)
    for name in ("visitors.count", "body.nearest.hands_raised", "render.health.fps", "plinth.health.status"):
        engine, render = engine_side.resolve(name), render_side.resolve(name)
        assert engine is not None and render is not None, name
        assert engine.type == render.type and engine.key == render.key
    for name in ("body.nearest.hand_raised", "nobody.count", "render.status"):
        assert engine_side.resolve(name) is None and render_side.resolve(name) is None
    fields = render_side.resolve("body.visitors")
    assert fields is not None and fields.fields == catalogue.item_fields["body.visitors"]
    assert {"id", "since", "hands_raised", "hand_height", "distance"} <= set(catalogue.item_fields["body.visitors"])
    # The flagship's own bindings, as the render process compiles them.
    bindings, problems = compile_bindings(exhibit.scene, render_side)
    assert problems == [] and len(bindings) == 3


@dataclass
class Features:
    hands_raised: float


@dataclass
class Visitor:
    id: int
    landmarks: np.ndarray
    features: Features
    since: float


def test_visitor_fields_reach_the_render_process_in_snapshots():
    _, catalogue, store = flagship()
    source = SnapshotSource(store, MonotonicClock(), catalogue.visitor_fields())
    resolver = SnapshotResolver(catalogue)
    expression = compile_expression("count(body.visitors, hands_raised > 0.5) + since(body.wave)", resolver)
    landmarks = np.zeros((33, 4), dtype=np.float32)
    store.set("body.visitors", tuple(Visitor(i, landmarks, Features(0.2 * i), 1.0) for i in range(5)))
    store.set("body.wave", 3)
    snapshot = source.take()
    assert snapshot.visitors["body"][4].fields["hands_raised"] == pytest.approx(0.8)
    resolver.load(snapshot)
    value = expression.evaluate()
    assert value is not None and 2.0 <= value < 2.5  # visitors 3 and 4, and the wave a moment ago
