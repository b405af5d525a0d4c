"""Assets uploaded into an exhibit's folder: glTF models, images, pose recordings.

An upload names where it goes, relative to the exhibit's folder (``models/boat.glb``). It is refused, with a
sentence, when the place is outside the folder (``..``, an absolute path, a link that leads out), hidden
(``.history``), the exhibit file itself, or already taken (unless replacing is asked for); when its kind is
not one an exhibit uses; when its first bytes are not what its name says (a ``.png`` that is not a PNG); and
when it is larger than its kind allows. It is written to a temporary file first and renamed into place only
when complete and checked, so a refused or broken upload leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import tempfile
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

MiB = 1024 * 1024
MAX_DEPTH = 4
MAX_PATH = 200
PARSED_GLTF = 2 * MiB
"""A ``.gltf`` up to this size is parsed whole; JSON parsing holds the GIL (32 MB held the loop for a second),
so a larger one is only checked to begin and end as an object (its bulk belongs in a ``.bin`` or a ``.glb``)."""
MAX_FIRST_LINE = 1 * MiB
"""A recording's first line (its header) is read up to this long to check that it is JSON."""


def _glb(head: bytes) -> bool:
    return head[:4] == b"glTF"


def _gltf(head: bytes) -> bool:
    return head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def _png(head: bytes) -> bool:
    return head[:8] == b"\x89PNG\r\n\x1a\n"


def _jpeg(head: bytes) -> bool:
    return head[:3] == b"\xff\xd8\xff"


def _webp(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def _gzip(head: bytes) -> bool:
    return head[:2] == b"\x1f\x8b"


def _json_line(head: bytes) -> bool:
    return head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def _anything(head: bytes) -> bool:
    return True


@dataclass(frozen=True)
class AssetKind:
    suffix: str
    what: str
    """What the kind is, for the sentence that refuses it (English / 中文)."""
    max_bytes: int
    looks_right: Callable[[bytes], bool]


KINDS: tuple[AssetKind, ...] = (
    AssetKind(".glb", "a binary glTF model / glTF 模型", 64 * MiB, _glb),
    AssetKind(".gltf", "a glTF model / glTF 模型", 64 * MiB, _gltf),
    AssetKind(".bin", "a glTF model's buffer / glTF 数据缓冲", 64 * MiB, _anything),
    AssetKind(".png", "a PNG image / PNG 图片", 16 * MiB, _png),
    AssetKind(".jpg", "a JPEG image / JPEG 图片", 16 * MiB, _jpeg),
    AssetKind(".jpeg", "a JPEG image / JPEG 图片", 16 * MiB, _jpeg),
    AssetKind(".webp", "a WebP image / WebP 图片", 16 * MiB, _webp),
    AssetKind(".jsonl.gz", "a pose recording / 姿态录制", 64 * MiB, _gzip),
    AssetKind(".jsonl", "a pose recording / 姿态录制", 64 * MiB, _json_line),
)
ALLOWED = ", ".join(kind.suffix for kind in KINDS)


class AssetRefused(Exception):
    """An upload that was refused; ``code`` is the console's error code (bad_request, too_large, conflict)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def kind_of(name: str) -> AssetKind | None:
    lower = name.lower()
    return next((kind for kind in sorted(KINDS, key=lambda k: -len(k.suffix)) if lower.endswith(kind.suffix)), None)


def _refuse_place(relative: str, why: str) -> AssetRefused:
    return AssetRefused("bad_request", f"`{relative[:100]}` cannot be uploaded: {why}")


def place_of(folder: Path, relative: str, exhibit_file: str = "exhibit.yaml") -> Path:
    """Where ``relative`` lands inside ``folder``; raises :class:`AssetRefused` for anywhere else."""
    if not relative or len(relative) > MAX_PATH:
        raise _refuse_place(relative, f"give a path of 1 to {MAX_PATH} characters / 路径长度须为 1 到 {MAX_PATH}")
    if "\\" in relative or "\0" in relative or relative.startswith("/") or PurePosixPath(relative).is_absolute():
        raise _refuse_place(relative, "it must be a path inside the exhibit's folder / 必须是展项文件夹内的路径")
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise _refuse_place(relative, "it leads outside the exhibit's folder / 路径指向展项文件夹之外")
    if any(part.startswith(".") for part in parts):
        raise _refuse_place(relative, "hidden files and folders are the studio's own / 隐藏文件和文件夹不可上传")
    if len(parts) > MAX_DEPTH:
        raise _refuse_place(relative, f"at most {MAX_DEPTH} folders deep / 最多 {MAX_DEPTH} 层文件夹")
    if any(unicodedata.category(ch).startswith("C") for ch in relative):
        raise _refuse_place(relative, "it holds control characters / 路径含控制字符")
    if relative == exhibit_file:
        raise _refuse_place(relative, "that is the exhibit file: edit it in the editor / 这是展项文件")
    root = folder.resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root) or target == root:
        raise _refuse_place(relative, "it leads outside the exhibit's folder / 路径指向展项文件夹之外")
    return target


class Upload:
    """One upload on its way in: checked before the first byte (place, kind, declared size), then chunk by
    chunk (size, first bytes), then whole (:meth:`commit`). Nothing is left behind unless it commits."""

    def __init__(self, folder: Path, relative: str, *, declared_size: int | None = None, replace: bool = False) -> None:
        self.relative, self.replace = relative, replace
        self.target, self.kind = _checked(folder, relative, declared_size, replace)
        self.target.parent.mkdir(parents=True, exist_ok=True)
        handle, self._temporary = tempfile.mkstemp(prefix=".upload-", dir=self.target.parent)
        self._out: IO[bytes] = os.fdopen(handle, "wb")
        self.size = 0
        self._head = b""

    def add(self, chunk: bytes) -> None:
        try:
            self.size += len(chunk)
            if self.size > self.kind.max_bytes:
                raise _too_large(self.relative, self.kind)
            if len(self._head) < 64:
                self._head += chunk[: 64 - len(self._head)]
                if len(self._head) >= 16 and not self.kind.looks_right(self._head):
                    raise _wrong_type(self.relative, self.kind)
            self._out.write(chunk)
        except BaseException:
            self.abort()
            raise

    def commit(self) -> int:
        """Check the whole file and put it in place; the bytes written."""
        try:
            if self.size == 0:
                raise AssetRefused("bad_request", f"`{self.relative[:100]}` is empty / 文件为空")
            if not self.kind.looks_right(self._head):
                raise _wrong_type(self.relative, self.kind)
            self._out.flush()
            os.fsync(self._out.fileno())
            self._out.close()
            _check_content(Path(self._temporary), self.kind, self.relative)
            if self.replace:
                os.replace(self._temporary, self.target)
            else:
                try:  # a new name: taken by nobody, not even an upload that finished meanwhile
                    os.link(self._temporary, self.target)
                except FileExistsError:
                    raise _taken(self.relative) from None
        except BaseException:
            self.abort()
            raise
        self.abort()  # the temporary name of a linked file
        return self.size

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._out.close()
        with contextlib.suppress(OSError):
            os.unlink(self._temporary)


def store_upload(
    folder: Path,
    relative: str,
    chunks: Iterable[bytes],
    *,
    declared_size: int | None = None,
    replace: bool = False,
) -> int:
    """Write an upload (``chunks``) to ``relative`` in ``folder``; the bytes written. Raises :class:`AssetRefused`."""
    upload = Upload(folder, relative, declared_size=declared_size, replace=replace)
    for chunk in chunks:
        upload.add(chunk)
    return upload.commit()


def _checked(folder: Path, relative: str, declared_size: int | None, replace: bool) -> tuple[Path, AssetKind]:
    target = place_of(folder, relative)
    kind = kind_of(relative)
    if kind is None:
        raise AssetRefused(
            "bad_request",
            f"`{relative[:100]}` is not a kind of file an exhibit uses; upload one of {ALLOWED} "
            f"/ 不支持此文件类型，可上传：{ALLOWED}",
        )
    if declared_size is not None and declared_size > kind.max_bytes:
        raise _too_large(relative, kind)
    if target.exists() and not target.is_file():
        raise _refuse_place(relative, "a folder of that name exists / 已存在同名文件夹")
    if target.exists() and not replace:
        raise _taken(relative)
    return target, kind


def _check_content(path: Path, kind: AssetKind, relative: str) -> None:
    """Deeper checks where a look at the first bytes is not enough (JSON that must parse)."""
    try:
        if kind.suffix == ".gltf":
            if path.stat().st_size <= PARSED_GLTF:
                json.loads(path.read_bytes())
            elif not path.read_bytes()[-64:].rstrip().endswith(b"}"):  # too big to parse without holding the loop
                raise ValueError("not a JSON object")
        elif kind.suffix in (".jsonl", ".jsonl.gz"):
            opener = gzip.open if kind.suffix == ".jsonl.gz" else open
            with opener(path, "rt", encoding="utf-8") as lines:
                json.loads(lines.readline(MAX_FIRST_LINE))
    except (ValueError, OSError, EOFError):
        raise _wrong_type(relative, kind) from None


def _too_large(relative: str, kind: AssetKind) -> AssetRefused:
    limit = kind.max_bytes // MiB
    return AssetRefused(
        "too_large",
        f"`{relative[:100]}` is larger than {limit} MiB, the most for {kind.what.split(' / ')[0]} "
        f"/ 文件超过 {limit} MiB 上限",
    )


def _wrong_type(relative: str, kind: AssetKind) -> AssetRefused:
    english, chinese = kind.what.split(" / ")
    return AssetRefused(
        "bad_request",
        f"`{relative[:100]}` is not {english}, as its name says / 文件内容不是{chinese}",
    )


def _taken(relative: str) -> AssetRefused:
    return AssetRefused(
        "conflict",
        f"`{relative[:100]}` exists already; ask to replace it / 文件已存在，如需覆盖请选择替换",
    )


def list_assets(folder: Path, exhibit_file: str = "exhibit.yaml") -> list[dict[str, Any]]:
    """The exhibit folder's files (not hidden ones, not the exhibit file), with size, at most 4 deep."""
    root = folder.resolve()
    found: list[dict[str, Any]] = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts) or len(relative.parts) > MAX_DEPTH:
            continue
        if path.is_file() and str(relative) != exhibit_file:
            found.append({"path": relative.as_posix(), "size": path.stat().st_size})
    return found
