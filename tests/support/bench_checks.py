"""What every benchmark figure in ``bench --json`` must look like, checked the same way for each bench."""

from __future__ import annotations

from typing import Any


def assert_figures(figures: dict[str, Any], names: dict[str, str]) -> None:
    """Exactly ``names`` (figure -> unit), each a positive value against a positive baseline, with their ratio."""
    assert set(figures) == set(names)
    for name, unit in names.items():
        figure = figures[name]
        assert set(figure) == {"value", "unit", "baseline", "ratio"}
        assert figure["unit"] == unit
        assert figure["value"] > 0 and figure["baseline"] > 0
        assert abs(figure["ratio"] - figure["value"] / figure["baseline"]) < 1e-9
