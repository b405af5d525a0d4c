"""The studio's draft checker: the project's own checker in a worker process of its own."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from engine.studio.drafts import DraftChecker
from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(120)
FLAGSHIP = ROOT / "exhibits" / "canal-lanterns"


@pytest.fixture
def flagship(tmp_path: Path) -> Path:
    shutil.copytree(FLAGSHIP, tmp_path / "canal-lanterns", ignore=shutil.ignore_patterns(".history"))
    return tmp_path / "canal-lanterns" / "exhibit.yaml"


@pytest.fixture
def text(flagship: Path) -> str:
    return flagship.read_text(encoding="utf-8")


async def test_a_draft_is_checked_as_exhibit_check_would(flagship: Path, text: str) -> None:
    checker = DraftChecker(flagship)
    try:
        assert (await checker.check(text)).problems == []
        [problem] = (await checker.check(text.replace("mappings:", "mapings:"))).problems
        assert (problem.line, problem.col) == (text.splitlines().index("mappings:") + 1, 1)
        assert "did you mean `mappings`" in str(problem)
    finally:
        checker.close()


async def test_a_file_that_breaks_the_reader_is_a_problem_not_a_failure(flagship: Path, text: str) -> None:
    checker = DraftChecker(flagship)
    try:
        nested = "format_version: 1\nid: deep\nvariables: {x: " + "[" * 300 + "]" * 300 + "}\n"
        [problem] = (await checker.check(nested)).problems
        assert problem.line == 1 and "nests too deeply" in problem.message
        assert (await checker.check(text)).problems == []  # still checking
    finally:
        checker.close()


async def test_the_worker_stops_when_nobody_types_and_starts_again(flagship: Path, text: str) -> None:
    checker = DraftChecker(flagship, idle=0.5)
    try:
        assert (await checker.check(text)).problems == []
        assert checker.running
        await asyncio.sleep(1.0)
        assert not checker.running  # its memory is given back
        assert (await checker.check(text)).problems == []
    finally:
        checker.close()
