"""Fixtures of the sensor tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.serial_board import Arduino


@pytest.fixture
def arduinos(tmp_path: Path) -> Iterator[Callable[..., Arduino]]:
    """Boards on ptys, in real time, each restarting when its port opens; closed when the test ends."""
    made: list[Arduino] = []

    def make_board(sketch, **options) -> Arduino:
        board = Arduino(tmp_path / f"board{len(made)}", sketch, **options)
        made.append(board)
        return board

    yield make_board
    for board in made:
        board.close()
