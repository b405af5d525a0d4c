"""What a support bundle holds, source by source: versions, the exhibit's files, its check, the node's logs,
health history and audit log, the latest benchmark figures, and its systemd unit and status."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.diagnose.bundle import PICTURE_SUFFIXES, Bundle
from engine.diagnose.redact import secret_key

PROJECT = "exhibit-controller"
KEY_PACKAGES = (
    "pydantic",
    "ruamel.yaml",
    "aiomqtt",
    "paho-mqtt",
    "amqtt",
    "python-osc",
    "zeroconf",
    "pyserial",
    "pyserial-asyncio-fast",
    "numpy",
    "mediapipe",
    "opencv-contrib-python",
    "opencv-python",
    "panda3d",
    "panda3d-gltf",
    "panda3d-simplepbr",
    "pillow",
    "aiohttp",
)
EXHIBIT_SUFFIXES = frozenset({".yaml", ".yml", ".json"})
"""The exhibit folder's files that go in: its YAML and JSON (never its pictures, models or recordings)."""
SKIPPED_FOLDERS = frozenset({".history", "recordings", ".git", "__pycache__", "node_modules"})
HISTORY_INDEX = (".history", "versions.jsonl")
"""From the studio's saved versions, only their index (who saved when, and why)."""
NEVER = re.compile(r"accounts|password|passwd|secret|credential|token|private|\.pem$|\.key$|\.p12$|\.pfx$", re.I)
"""Files whose names say they hold secrets: left out whatever their kind."""
FILE_MAX = 1024 * 1024
EXHIBIT_MAX = 5 * 1024 * 1024
LOG_BUDGET = 5 * 1024 * 1024
"""The most recent log lines, newest file first, up to this many bytes."""
HEALTH_BUDGET = 4 * 1024 * 1024
AUDIT_LINES = 1000
COMMAND_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Sources:
    """Where one node keeps what the bundle takes."""

    exhibit_file: Path
    exhibit_id: str
    state_dir: Path
    project_root: Path
    bench_dirs: Sequence[Path] = ()
    unit_file: Path | None = None
    check_text: str = ""


def collect(bundle: Bundle, sources: Sources) -> None:
    """Everything, each source on its own: one that is missing or unreadable is a note, never a failure."""
    bundle.add("versions.json", json.dumps(versions(sources.project_root), indent=2, ensure_ascii=False) + "\n")
    exhibit_files(bundle, sources.exhibit_file)
    bundle.add("check.txt", sources.check_text or "(not checked)\n", note="`exhibit check` of the exhibit file")
    state = sources.state_dir
    if not state.is_dir():
        bundle.note(f"no state folder at {state}: the exhibit has not run here with it (no logs, no health history)")
    tails(bundle, "logs", rotated(state / "logs" / "exhibit.log"), LOG_BUDGET)
    tails(bundle, "health", rotated(state / "health.jsonl"), HEALTH_BUDGET)
    audit(bundle, state / "audit.log")
    state_files(bundle, state)
    bench(bundle, sources.bench_dirs)
    service(bundle, sources.exhibit_id, sources.unit_file)


def versions(root: Path) -> dict[str, object]:
    packages = {}
    for name in sorted({*requirements(), *KEY_PACKAGES}, key=str.lower):
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "project": PROJECT,
        "version": project_version(root),
        "git_commit": run_text(["git", "-C", str(root), "rev-parse", "HEAD"]).strip() or None,
        "python": sys.version,
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "os": os_release(),
        "cpus": os.cpu_count(),
        "packages": packages,
    }


def requirements() -> list[str]:
    try:
        needs = importlib.metadata.requires(PROJECT) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    return [re.split(r"[\s<>=!~;\[(]", need, maxsplit=1)[0] for need in needs if "extra ==" not in need]


def project_version(root: Path) -> str | None:
    try:
        return importlib.metadata.version(PROJECT)
    except importlib.metadata.PackageNotFoundError:
        pass
    found = re.search(r'(?m)^version\s*=\s*"([^"]+)"', read_text(root / "pyproject.toml") or "")
    return found.group(1) if found else None


def os_release() -> str | None:
    text = read_text(Path("/etc/os-release")) or ""
    found = re.search(r'(?m)^PRETTY_NAME="?([^"\n]*)', text)
    return found.group(1) if found else None


def exhibit_files(bundle: Bundle, exhibit_file: Path) -> None:
    folder = exhibit_file.parent
    secret_files = named_secret_files(exhibit_file)
    total = 0
    for path in walk(folder):
        relative = path.relative_to(folder).as_posix()
        name = f"exhibit/{relative}"
        suffix = path.suffix.lower()
        if suffix in PICTURE_SUFFIXES:
            bundle.leave_out(name, "a picture, video or 3D model")
        elif path.resolve() in secret_files or NEVER.search(path.name):
            bundle.leave_out(name, "may hold secrets")
        elif suffix not in EXHIBIT_SUFFIXES and path.parts[-2:] != HISTORY_INDEX:
            bundle.leave_out(name, "not an exhibit text file (recordings, sounds, fonts...)")
        elif (size := path.stat().st_size) > FILE_MAX or total + size > EXHIBIT_MAX:
            bundle.leave_out(name, f"too large (over {FILE_MAX // 1024} KiB, or {EXHIBIT_MAX // 2**20} MiB in all)")
        elif (text := read_text(path)) is None:
            bundle.leave_out(name, "unreadable or not text")
        else:
            total += size
            bundle.add(name, text)


def walk(folder: Path) -> Iterator[Path]:
    """Every file under ``folder``, skipping the studio's saved versions (but their index) and recordings."""
    for here, dirs, files in os.walk(folder):
        inside = Path(here).relative_to(folder).parts
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_FOLDERS or (not inside and d == HISTORY_INDEX[0]))
        for name in sorted(files):
            if inside[:1] == (HISTORY_INDEX[0],) and (len(inside) > 1 or name != HISTORY_INDEX[1]):
                continue
            yield Path(here) / name


def named_secret_files(exhibit_file: Path) -> set[Path]:
    """Files the exhibit names as holding secrets (``password_file:``, ``key_file:``), resolved."""
    text = read_text(exhibit_file) or ""
    found = set()
    for match in re.finditer(r"(?m)^[ \t]*([\w-]+)_file[ \t]*:[ \t]*[\"']?([^\"'#\s]+)", text):
        if secret_key(match.group(1)):
            found.add((exhibit_file.parent / match.group(2)).resolve())
    return found


def rotated(path: Path) -> list[Path]:
    """A rotated file and its older copies (``.1``, ``.2``...), newest first."""
    older = sorted(path.parent.glob(path.name + ".*"), key=lambda p: int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0)
    return [p for p in [path, *older] if p.is_file() and (p == path or p.suffix[1:].isdigit())]


def tails(bundle: Bundle, folder: str, files: list[Path], budget: int) -> None:
    """The newest ``budget`` bytes of ``files`` (newest first), each cut at a line."""
    if not files:
        bundle.note(f"{folder}: none found")
    for path in files:
        if budget <= 0:
            bundle.leave_out(f"{folder}/{path.name}", "older than the most recent lines taken")
            continue
        size = path.stat().st_size
        text = tail(path, budget)
        budget -= size
        if text is None:
            bundle.note(f"{path}: cannot be read (run `exhibit diagnose` as the exhibit's user, or with sudo)")
        else:
            bundle.add(f"{folder}/{path.name}", text, note="its last lines" if size > len(text.encode()) else "")


def tail(path: Path, limit: int) -> str | None:
    """The last ``limit`` bytes of ``path``, from the first whole line; None when it cannot be read."""
    try:
        with path.open("rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - limit))
            data = file.read(limit)
    except OSError:
        return None
    if size > limit:
        data = data[data.find(b"\n") + 1 :]
    return data.decode("utf-8", "backslashreplace")


def audit(bundle: Bundle, path: Path) -> None:
    lines: list[str] = []
    for part in rotated(path):
        text = tail(part, FILE_MAX) or ""
        lines[:0] = text.splitlines(keepends=True)
        if len(lines) >= AUDIT_LINES:
            break
    if not lines:
        bundle.note("audit log: none found")
        return
    bundle.add("audit.log", "".join(lines[-AUDIT_LINES:]), note=f"its last {AUDIT_LINES} lines at most")


def state_files(bundle: Bundle, state: Path) -> None:
    """What the state folder holds (names and sizes), and its own JSON records (crash record, show state)."""
    if not state.is_dir():
        return
    listing = []
    for path in sorted(state.rglob("*")):
        if path.is_file():
            listing.append(f"{path.stat().st_size:>12,}  {path.relative_to(state).as_posix()}")
    bundle.add("state/listing.txt", "\n".join(listing) + "\n", note=f"the files in {state}")
    for path in sorted(state.glob("*.json")):
        if NEVER.search(path.name) or path.stat().st_size > FILE_MAX:
            bundle.leave_out(f"state/{path.name}", "may hold secrets, or too large")
        elif (text := read_text(path)) is not None:
            bundle.add(f"state/{path.name}", text)


def bench(bundle: Bundle, folders: Sequence[Path]) -> None:
    found = False
    for folder in dict.fromkeys(folders):
        for name in ("latest.json", "latest.txt"):
            text = read_text(folder / name)
            if text is not None:
                found = True
                bundle.add(f"bench/{name}", text, note=f"from {folder}")
        if found:
            return
    bundle.note("benchmark figures: none saved (`exhibit bench --json` saves them)")


def service(bundle: Bundle, exhibit_id: str, unit_file: Path | None) -> None:
    if unit_file is not None and (text := read_text(unit_file)) is not None:
        bundle.add(f"service/{unit_file.name}", text, note=str(unit_file))
    else:
        bundle.note(f"systemd unit: not installed ({unit_file})")
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        bundle.note("systemctl: not on this computer")
        return
    command = [systemctl, "status", "--no-pager", "--lines=50", f"exhibit-{exhibit_id}.service"]
    output = run_text(command)
    if output:
        bundle.add("service/systemctl-status.txt", output, note="`systemctl status`")
    else:
        bundle.note("systemctl status: no answer")


def run_text(command: list[str]) -> str:
    """A command's output, or empty when it is missing, fails to start or takes too long."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout + done.stderr if done.returncode in (0, 3, 4) or done.stdout else ""


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
