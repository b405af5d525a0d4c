"""Every saved version of an exhibit file, kept beside it in ``.history/`` (who saved it, when, and why).

Saving never loses anything: the version is written before the exhibit file is replaced, the exhibit file
is replaced atomically (a temporary file, flushed to disk, renamed over it), and a file that changed outside
the studio (a text editor, a ``git pull``) is recorded as a version of its own before a save replaces it.
A save names the version it was based on; if the file has moved on since, the save is refused rather than
overwriting someone else's work.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: the thread lock alone (one studio per folder there)
    fcntl = None  # type: ignore[assignment]

HISTORY_DIR = ".history"
INDEX = "versions.jsonl"
LOCK = "lock"
OUTSIDE = "(outside the studio / 工作室之外)"
"""Who changed the file when it changed without the studio."""


_THREADS = threading.Lock()


class HistoryError(Exception):
    """A version that does not exist, or a save based on an old version; ``code`` says which."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Version:
    number: int
    sha256: str
    user: str
    at: str
    """ISO 8601, UTC."""
    note: str
    size: int
    restored_from: int | None = None


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a reader (or a crash) sees the old file or the new, never half.
    A symbolic link is followed: its target is replaced, the link stays."""
    path = path.resolve()
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(OSError):
            os.chmod(temporary, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a power cut once the folder is synced
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


class ExhibitHistory:
    """The versions of one exhibit file."""

    def __init__(self, exhibit_file: Path) -> None:
        self.file = exhibit_file
        self.folder = exhibit_file.parent / HISTORY_DIR

    # --- reading ------------------------------------------------------------------------------------------

    def current(self) -> str:
        return self.file.read_text(encoding="utf-8")

    def versions(self) -> list[Version]:
        """Every recorded version, oldest first (a damaged index line is skipped, never fatal)."""
        try:
            lines = (self.folder / INDEX).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        found: list[Version] = []
        for line in lines:
            try:
                found.append(Version(**json.loads(line)))
            except (ValueError, TypeError):
                continue
        return found

    def text_of(self, number: int) -> str:
        if not any(v.number == number for v in self.versions()):
            raise HistoryError("not_found", f"there is no version {number} / 没有第 {number} 版")
        return (self.folder / _version_file(number)).read_text(encoding="utf-8")

    def diff(self, number: int, against: str | None = None) -> str:
        """A unified diff from version ``number`` to ``against`` (default: the file as it is now)."""
        old = self.text_of(number)
        new = self.current() if against is None else against
        lines = difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"version {number}",
            tofile="current" if against is None else "draft",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)

    # --- writing ------------------------------------------------------------------------------------------

    def record_outside_change(self) -> Version | None:
        """If the file differs from the last recorded version (or nothing is recorded yet), record it as it is."""
        with self._locked():
            return self._record_outside_change()

    def _record_outside_change(self) -> Version | None:
        try:
            text = self.current()
        except FileNotFoundError:
            return None
        versions = self.versions()
        if versions and versions[-1].sha256 == digest(text):
            return None
        note = "as it was when the studio first saw it / 工作室首次读取时的版本" if not versions else "changed outside"
        return self._record(text, OUTSIDE, note, None, versions)

    def save(
        self, text: str, user: str, note: str = "", *, base: str | None = None, restored_from: int | None = None
    ) -> Version:
        """Keep ``text`` as a new version, then put it in place of the exhibit file. ``base``: the SHA-256 of the
        text the editor started from; a save is refused if the file has changed since. Saves are one at a time,
        across threads and processes (a studio and a `run` of the same folder)."""
        with self._locked():
            on_disk = self.current()
            if base is not None and base != digest(on_disk):
                raise HistoryError(
                    "conflict",
                    "the exhibit file changed since you opened it (someone else saved, or it was edited outside the "
                    "studio): reload it, then make your change again / 打开后展项文件已被他人修改，请重新载入后再修改",
                )
            self._record_outside_change()
            version = self._record(text, user, note, restored_from, self.versions())
            write_atomically(self.file, text.encode("utf-8"))
            return version

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time: a lock for this process's threads, and a lock file for other processes."""
        with _THREADS:
            self.folder.mkdir(exist_ok=True)
            with open(self.folder / LOCK, "a+b") as lock:
                if fcntl is not None:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    if fcntl is not None:
                        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _record(self, text: str, user: str, note: str, restored_from: int | None, versions: list[Version]) -> Version:
        self.folder.mkdir(exist_ok=True)
        # Numbered past every version file too: one whose index line a crash cut off is never overwritten.
        on_disk = [int(f.stem[1:]) for f in self.folder.glob("v*.yaml") if f.stem[1:].isdigit()]
        number = max([0, *on_disk, *(v.number for v in versions)]) + 1
        data = text.encode("utf-8")
        version = Version(
            number,
            digest(text),
            user,
            dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            note[:200],
            len(data),
            restored_from,
        )
        write_atomically(self.folder / _version_file(number), data)
        index_path = self.folder / INDEX
        with open(index_path, "a+b") as index:
            index.seek(0, os.SEEK_END)
            if index.tell() > 0:
                index.seek(-1, os.SEEK_END)
                if index.read(1) != b"\n":  # a line a crash cut short stays alone, and is skipped when read
                    index.write(b"\n")
            index.write((json.dumps(asdict(version), ensure_ascii=False) + "\n").encode("utf-8"))
            index.flush()
            os.fsync(index.fileno())
        return version


def _version_file(number: int) -> str:
    return f"v{number:05d}.yaml"


def describe(version: Version) -> dict[str, Any]:
    return asdict(version)
