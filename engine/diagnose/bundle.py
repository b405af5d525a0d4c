"""A support bundle being put together: text members (each redacted as it is added), what was left out and
why, and the MANIFEST that says both; written as one ``.tar.gz``."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from engine.diagnose.redact import Redactor

PICTURE_SUFFIXES = frozenset(
    [
        ".png",
        ".jpg",
        ".jpeg",
        ".jpe",
        ".gif",
        ".webp",
        ".bmp",
        ".tif",
        ".tiff",
        ".heic",
        ".heif",
        ".avif",
        ".svg",
        ".ico",
        ".exr",
        ".hdr",
        ".ktx",
        ".ktx2",
        ".dds",
        ".tga",
        ".mp4",
        ".m4v",
        ".mov",
        ".avi",
        ".mkv",
        ".webm",
        ".mjpg",
        ".mjpeg",
        ".mpg",
        ".mpeg",
        ".ogv",
        ".h264",
        ".h265",
        ".y4m",
        ".glb",
        ".gltf",
        ".bam",
        ".egg",
        ".obj",
        ".fbx",
        ".stl",
        ".ply",
        ".usdz",
    ]
)
"""Pictures, videos and 3D models: never in a bundle, whatever else the rules say."""
MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"glTF", b"\x1aE\xdf\xa3", b"RIFF", b"II*\x00", b"MM\x00*")
"""How pictures, videos and models begin (PNG, JPEG, GIF, glTF binary, Matroska/WebM, RIFF AVI/WebP, TIFF)."""
LISTED = 40
"""At most this many left-out files are named in the manifest, per reason; the rest are counted."""


def looks_like_media(data: bytes) -> bool:
    """Whether ``data`` begins like a picture, a video (MP4's ``ftyp`` box too) or a binary 3D model."""
    return data.startswith(MAGIC) or data[4:8] == b"ftyp"


@dataclass
class Member:
    name: str
    size: int
    redactions: int
    note: str = ""


@dataclass
class Bundle:
    """What goes into the support bundle; every text added is redacted first."""

    title: str
    redactor: Redactor = field(default_factory=Redactor)
    members: list[Member] = field(default_factory=list)
    left_out: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _data: dict[str, bytes] = field(default_factory=dict)

    def add(self, name: str, text: str, note: str = "") -> None:
        """``text`` as the member ``name``, secrets replaced."""
        if Path(name).suffix.lower() in PICTURE_SUFFIXES:
            self.leave_out(name, "a picture, video or 3D model")
            return
        before = self.redactor.total
        data = self.redactor.text(text).encode("utf-8", "backslashreplace")
        if looks_like_media(data):
            self.leave_out(name, "a picture, video or 3D model")
            return
        self._data[name] = data
        self.members.append(Member(name, len(data), self.redactor.total - before, note))

    def leave_out(self, name: str, reason: str) -> None:
        self.left_out.setdefault(reason, []).append(name)

    def note(self, line: str) -> None:
        """A line for the manifest (a source that was not there, a command that failed)."""
        self.notes.append(line)

    def manifest(self) -> str:
        lines = [self.title, f"made {time.strftime('%Y-%m-%d %H:%M:%S %z')}", "", "Contents / 内容:"]
        for member in self.members:
            redacted = f", {member.redactions} redacted" if member.redactions else ""
            note = f" ({member.note})" if member.note else ""
            lines.append(f"  {member.name}  {member.size:,} bytes{redacted}{note}")
        lines += ["", "Redacted / 已隐去:"]
        kinds: Counter[str] = self.redactor.counts
        lines += [f"  {kind}: {count}" for kind, count in sorted(kinds.items())] or ["  nothing"]
        lines += ["", "Left out / 未包含:"]
        for reason, names in sorted(self.left_out.items()):
            lines.append(f"  {reason}: {len(names)}")
            lines += [f"    {name}" for name in names[:LISTED]]
            if len(names) > LISTED:
                lines.append(f"    ... and {len(names) - LISTED} more")
        if not self.left_out:
            lines.append("  nothing")
        lines += [
            "  never included: pictures, videos, 3D models, recordings, the accounts file, private keys "
            "/ 从不包含：图片、视频、三维模型、录制文件、账户文件、私钥"
        ]
        if self.notes:
            lines += ["", "Notes / 说明:", *(f"  {line}" for line in self.notes)]
        return "\n".join(lines) + "\n"

    def write(self, out: Path) -> int:
        """Write the bundle (the MANIFEST first) to ``out``, readable by this user only; its size in bytes."""
        members = {"MANIFEST.txt": self.manifest().encode(), **self._data}
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        try:
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
                now = time.time()
                for name, data in members.items():
                    info = tarfile.TarInfo(f"{self.root}/{name}")
                    info.size, info.mtime, info.mode = len(data), now, 0o644
                    tar.addfile(info, io.BytesIO(data))
            os.replace(temporary, out)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return out.stat().st_size

    @property
    def root(self) -> str:
        """The one folder the bundle unpacks into."""
        return "".join(c if c.isalnum() or c in "-_." else "-" for c in self.title.split(" ")[0]) or "diagnose"
