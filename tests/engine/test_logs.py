"""Log files in the node's state folder: rotated under a hard cap, not world-readable, in the terminal's format,
and never a reason for the exhibit to stop."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import logs
from engine.logs import FORMAT_ENV, LOG_MODE, CappedFileHandler, add_file_logging, remove_file_logging


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger at INFO with no handlers of the run's; restored afterwards."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers[:] = []
    root.setLevel(logging.INFO)
    yield root
    for handler in root.handlers:
        handler.close()
    root.handlers[:], root.level = saved, level


def on_disk(folder: Path) -> dict[str, int]:
    return {path.name: path.stat().st_size for path in sorted(folder.iterdir())}


def test_rotation_keeps_the_files_under_a_hard_cap(tmp_path: Path, root_logger: logging.Logger):
    handler = add_file_logging(tmp_path, max_bytes=20_000, backups=2)
    assert handler is not None
    log = logging.getLogger("test.rotation")
    for number in range(3000):  # about 300 kB of lines, many with three-byte characters
        log.info("line %05d 展项日志 %s", number, "x" * (number % 70))
    remove_file_logging(handler)
    sizes = on_disk(tmp_path / "logs")
    assert sorted(sizes) == ["exhibit.log", "exhibit.log.1", "exhibit.log.2"]
    assert all(size <= 20_000 for size in sizes.values()), sizes
    assert sum(sizes.values()) <= 3 * 20_000
    assert all(size > 15_000 for name, size in sizes.items() if name != "exhibit.log"), sizes
    newest = (tmp_path / "logs" / "exhibit.log").read_text(encoding="utf-8").splitlines()
    assert "line 02999 展项日志" in newest[-1]


def test_one_huge_record_is_cut_rather_than_overrunning_the_cap(tmp_path: Path, root_logger: logging.Logger):
    handler = add_file_logging(tmp_path, max_bytes=100_000, backups=1)
    logging.getLogger("test.huge").warning("%s", "日" * 200_000)  # 600 kB in UTF-8
    remove_file_logging(handler)
    sizes = on_disk(tmp_path / "logs")
    assert all(size <= 100_000 for size in sizes.values()), sizes
    assert (tmp_path / "logs" / "exhibit.log").read_text(encoding="utf-8").rstrip().endswith("[cut]")


def test_the_file_is_not_world_readable_even_when_it_was(tmp_path: Path, root_logger: logging.Logger):
    old = os.umask(0o002)
    try:
        (tmp_path / "logs").mkdir()
        (tmp_path / "logs" / "exhibit.log").write_text("old line\n")
        os.chmod(tmp_path / "logs" / "exhibit.log", 0o666)
        handler = add_file_logging(tmp_path)
        logging.getLogger("test.mode").info("alice logged in")
        remove_file_logging(handler)
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "logs" / "exhibit.log").stat().st_mode)
    assert mode == LOG_MODE == 0o640


def test_lines_look_as_on_the_terminal(tmp_path: Path, root_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(FORMAT_ENV, "text")
    handler = add_file_logging(tmp_path / "text")
    logging.getLogger("engine.test").warning("sensor %s offline", "body")
    remove_file_logging(handler)
    line = (tmp_path / "text" / "logs" / "exhibit.log").read_text(encoding="utf-8").strip()
    assert line.endswith("WARNING engine.test: sensor body offline") and line[:4].isdigit()

    monkeypatch.setenv(FORMAT_ENV, "json")
    handler = add_file_logging(tmp_path / "json")
    logging.getLogger("engine.test").warning("sensor %s offline", "body")
    remove_file_logging(handler)
    entry = json.loads((tmp_path / "json" / "logs" / "exhibit.log").read_text(encoding="utf-8"))
    assert entry["msg"] == "sensor body offline" and entry["level"] == "warning"


def test_a_folder_that_cannot_be_made_is_one_warning_and_no_file(
    tmp_path: Path, root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
):
    (tmp_path / "logs").write_text("a file where the folder should be")
    assert add_file_logging(tmp_path) is None
    logging.getLogger("test.nofolder").warning("the exhibit goes on")
    err = capsys.readouterr().err
    assert err.count("warning: cannot write log files") == 1
    assert not any(isinstance(handler, CappedFileHandler) for handler in root_logger.handlers)


def test_a_full_disk_is_said_once_and_logging_goes_on(
    tmp_path: Path, root_logger: logging.Logger, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    if not Path("/dev/full").exists():
        pytest.fail("/dev/full (a disk that is always full) is missing")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "exhibit.log").symlink_to("/dev/full")
    kept: list[str] = []
    other = logging.Handler()
    other.emit = lambda record: kept.append(record.getMessage())  # type: ignore[method-assign]
    root_logger.addHandler(other)
    handler = add_file_logging(tmp_path)
    assert isinstance(handler, CappedFileHandler)
    for number in range(50):
        logging.getLogger("test.full").info("line %d", number)
    err = capsys.readouterr().err
    assert err.count("warning: cannot write the log file") == 1, err
    assert "Traceback" not in err
    assert kept == [f"line {n}" for n in range(50)]  # the terminal still has every line
    assert handler.failures == 1  # then left alone until RETRY_S has passed

    monkeypatch.setattr(logs.time, "monotonic", lambda: 10**9)  # the retry is due: it fails again, silently
    logging.getLogger("test.full").info("later")
    assert handler.failures == 2 and capsys.readouterr().err == ""
    remove_file_logging(handler)
