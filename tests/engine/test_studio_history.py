"""The studio's version history on disk: nothing a curator wrote is ever lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.studio.history import INDEX, OUTSIDE, ExhibitHistory, HistoryError, digest


@pytest.fixture
def history(tmp_path: Path) -> ExhibitHistory:
    file = tmp_path / "exhibit.yaml"
    file.write_text("id: a\n", encoding="utf-8")
    return ExhibitHistory(file)


def test_the_first_save_keeps_the_file_as_it_was(history: ExhibitHistory) -> None:
    history.save("id: b\n", "ada", "second")
    first, second = history.versions()
    assert (first.user, history.text_of(1)) == (OUTSIDE, "id: a\n")
    assert (second.user, second.note, history.text_of(2)) == ("ada", "second", "id: b\n")
    assert history.current() == "id: b\n"


def test_a_change_made_outside_the_studio_becomes_a_version_before_the_next_save(history: ExhibitHistory) -> None:
    history.save("id: b\n", "ada")
    history.file.write_text("id: edited-by-hand\n", encoding="utf-8")
    history.save("id: c\n", "ada")
    texts = [history.text_of(v.number) for v in history.versions()]
    assert texts == ["id: a\n", "id: b\n", "id: edited-by-hand\n", "id: c\n"]


def test_a_save_from_an_old_base_is_refused_and_changes_nothing(history: ExhibitHistory) -> None:
    base = digest(history.current())
    history.file.write_text("id: someone-else\n", encoding="utf-8")
    with pytest.raises(HistoryError) as refused:
        history.save("id: mine\n", "ada", base=base)
    assert refused.value.code == "conflict"
    assert history.current() == "id: someone-else\n"


def test_a_damaged_index_line_is_skipped_not_fatal(history: ExhibitHistory) -> None:
    history.save("id: b\n", "ada")
    with open(history.folder / INDEX, "a", encoding="utf-8") as index:
        index.write('{"number": 3, "sha2\n')  # a power cut in the middle of a line
    assert [v.number for v in history.versions()] == [1, 2]
    assert history.save("id: c\n", "ada").number == 3


def test_the_diff_compares_a_version_with_the_current_file(history: ExhibitHistory) -> None:
    history.save("id: b\ntitle: x\n", "ada")
    diff = history.diff(1)
    assert "-id: a\n" in diff and "+id: b\n" in diff and "+title: x\n" in diff
    with pytest.raises(HistoryError):
        history.diff(7)
