"""The studio's version history on disk: nothing a curator wrote is ever lost."""

from __future__ import annotations

import threading
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


def test_saves_from_many_threads_keep_every_version_whole(history: ExhibitHistory) -> None:
    def saves(who: str) -> None:
        for n in range(15):
            history.save(f"id: {who}-{n}\n", who)

    workers = [threading.Thread(target=saves, args=(who,)) for who in ("ada", "bo")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    versions = history.versions()
    assert [v.number for v in versions] == list(range(1, 32))  # the file as it was, then 30 saves
    assert all(digest(history.text_of(v.number)) == v.sha256 for v in versions)


def test_a_line_cut_short_by_a_crash_never_costs_a_version(history: ExhibitHistory) -> None:
    history.save("id: b\n", "ada")
    with open(history.folder / INDEX, "a", encoding="utf-8") as index:
        index.write('{"number": 3, "sha256": "ab')  # the crash: no end of line
    (history.folder / "v00003.yaml").write_text("id: written-before-the-crash\n", encoding="utf-8")
    third = history.save("id: c\n", "ada")
    fourth = history.save("id: d\n", "ada")
    assert (third.number, fourth.number) == (4, 5)  # v00003.yaml is not overwritten
    assert (history.folder / "v00003.yaml").read_text(encoding="utf-8") == "id: written-before-the-crash\n"
    assert [history.text_of(n) for n in (4, 5)] == ["id: c\n", "id: d\n"]


def test_a_linked_exhibit_file_is_saved_through_its_link(tmp_path: Path) -> None:
    real = tmp_path / "checkout" / "exhibit.yaml"
    real.parent.mkdir()
    real.write_text("id: a\n", encoding="utf-8")
    link = tmp_path / "folder" / "exhibit.yaml"
    link.parent.mkdir()
    link.symlink_to(real)
    ExhibitHistory(link).save("id: b\n", "ada")
    assert link.is_symlink() and real.read_text(encoding="utf-8") == "id: b\n"
