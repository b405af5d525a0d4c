"""Pose model bundles: the one shipped in the project (works offline) and the
official MediaPipe bundles, installed into a user directory where there is
internet access."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engine.errors import UserError

SHIPPED_DIR = Path(__file__).resolve().parents[2] / "content" / "models"
SHIPPED = {"full": SHIPPED_DIR / "pose_landmarker_full.task"}
SHIPPED_SHA256 = "798c783f809bd1b68d6bdef7e395b3242eee4092a738dbac82413384a00106ec"
OFFICIAL_URL = (
    "https://storage.googleapis.com/mediapipe-models/pose_landmarker/pose_landmarker_{name}/float16/latest/"
    "pose_landmarker_{name}.task"
)
OFFICIAL = ("lite", "full", "heavy")


def user_dir() -> Path:
    """Where official bundles are installed (``$EXHIBIT_MODELS_DIR`` overrides)."""
    configured = os.environ.get("EXHIBIT_MODELS_DIR")
    if configured:
        return Path(configured)
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")  # empty: unset (XDG)
    return data_home / "exhibit-controller" / "models"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path
    origin: str
    """``shipped`` (in the project) or ``installed`` (official, in the user directory)."""

    @property
    def size_mb(self) -> float:
        return self.path.stat().st_size / 1e6


def available() -> list[ModelInfo]:
    models = [ModelInfo(name, path, "shipped") for name, path in SHIPPED.items() if path.is_file()]
    for name in OFFICIAL:
        path = user_dir() / f"pose_landmarker_{name}.task"
        if path.is_file():
            models.append(ModelInfo(name, path, "installed"))
    return models


def resolve(model: str, base: Path | None = None) -> Path:
    """A model name (``lite``/``full``/``heavy``) or a ``.task`` path (relative to ``base``)."""
    if model in OFFICIAL:
        installed = user_dir() / f"pose_landmarker_{model}.task"
        if installed.is_file():
            return installed
        if model in SHIPPED and SHIPPED[model].is_file():
            return SHIPPED[model]
        raise UserError(
            f"The `{model}` pose model is not installed; run `python launcher.py models --install "
            f"{model}` on a machine with internet access, or use `full`, which ships with the project."
        )
    path = Path(model) if base is None or Path(model).is_absolute() else base / model
    if not path.is_file():
        raise UserError(f"The pose model file `{path}` does not exist.")
    return path


def install(name: str, timeout: float = 30.0) -> Path:
    """Download an official bundle into :func:`user_dir`; one clear sentence when offline."""
    if name not in OFFICIAL:
        raise UserError(f"There is no official pose model called `{name}`; choose lite, full or heavy.")
    url = _download_url(name)
    target = user_dir() / f"pose_landmarker_{name}.task"
    partial = target.with_suffix(".part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        out = partial.open("wb")
    except OSError as exc:
        blocker = target.parent
        while not blocker.exists() and blocker != blocker.parent:
            blocker = blocker.parent
        reason = f"`{blocker}` is a file, not a folder" if blocker.is_file() else exc.strerror or str(exc)
        raise UserError(
            f"Cannot install the `{name}` model into `{target.parent}` ({reason}); "
            "set EXHIBIT_MODELS_DIR to a folder you can write."
        ) from None
    try:
        with out, urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(1 << 16):
                _write(out, chunk)
            _write(out, b"")  # flushed here, so a full disk is not taken for a failed download
    except _WriteFailed as failed:
        partial.unlink(missing_ok=True)
        raise UserError(
            f"Cannot write the `{name}` model to `{partial}` ({failed.error.strerror or failed.error}); "
            "free some disk space or set EXHIBIT_MODELS_DIR to another folder."
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        why = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise UserError(
            f"This machine cannot download the `{name}` model ({why}); the shipped `full` model works offline."
        ) from None
    partial.replace(target)
    return target


class _WriteFailed(Exception):
    def __init__(self, error: OSError) -> None:
        super().__init__(error)
        self.error = error


def _write(out: BinaryIO, data: bytes) -> None:
    """``data`` written (and, when empty, everything buffered flushed); :class:`_WriteFailed` if the disk refuses."""
    try:
        if data:
            out.write(data)
        else:
            out.flush()
    except OSError as exc:
        raise _WriteFailed(exc) from None


def _download_url(name: str) -> str:
    """Where the official bundle ``name`` is downloaded from; a gallery on a closed network can point
    ``$EXHIBIT_MODELS_URL`` (with ``{name}`` in it) at an internal mirror."""
    template = os.environ.get("EXHIBIT_MODELS_URL", OFFICIAL_URL)
    try:
        url = template.format(name=name)
    except (KeyError, IndexError, ValueError):
        raise UserError(
            f"EXHIBIT_MODELS_URL `{template}` is not a download address; give one like "
            "https://mirror.example/pose_landmarker_{name}.task, with `{name}` where the model name goes."
        ) from None
    if urllib.parse.urlsplit(url).scheme not in ("http", "https", "file"):
        raise UserError(
            f"EXHIBIT_MODELS_URL `{template}` is not a download address; give one that starts with https:// or http://."
        )
    return url


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
