"""``python -m tests.mutation``: mutation testing of the safety code with mutmut, on demand.

Mutates the functions of :mod:`tests.mutation.scope` (PANIC, the e-stop, the motion gate, cues, conditions,
fades, mappings, the devices' safe state and expiry), runs only the engine and device tests against each
mutant (``[tool.mutmut]`` in ``pyproject.toml``), and writes ``mutation-report.md`` (kill rates overall, per
module and per function; every survivor with its file, line and diff; equivalent survivors with the reason
from ``tests/mutation/equivalent.toml``) and ``mutation-results.json`` into ``--out``.

Each run starts from a fresh ``mutants/`` folder (mutmut's working copy of the project). Processes that tests
started and could not stop (a mutant that hung was killed under them) are stopped when the run ends.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.mutation.report import collect, functions_of, summary, write
from tests.mutation.scope import SCOPE, module_name, patterns

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "mutation-results"


def scope_problems(root: Path) -> list[str]:
    """Sentences for each way scope.py and the code or pyproject.toml disagree."""
    problems = []
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8")).get("tool", {}).get("mutmut", {})
    configured = set(config.get("only_mutate", []))
    if configured != set(SCOPE):
        problems.append(
            "pyproject.toml's [tool.mutmut] only_mutate must name the files of tests/mutation/scope.py: "
            f"missing {sorted(set(SCOPE) - configured) or 'none'}, extra {sorted(configured - set(SCOPE)) or 'none'}"
        )
    for path, functions in SCOPE.items():
        source = root / path
        if not source.is_file():
            problems.append(f"{path} (tests/mutation/scope.py) does not exist")
            continue
        defined = functions_of(ast.parse(source.read_text(encoding="utf-8")))
        for function in functions or ():
            node = defined.get(function)
            if node is None:
                problems.append(f"{path} has no function `{function}` (renamed?); update tests/mutation/scope.py")
            elif any(ast.unparse(d) not in ("staticmethod", "classmethod") for d in node.decorator_list):
                problems.append(f"`{function}` in {path} is decorated, and mutmut does not mutate decorated functions")
    return problems


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    except OSError:
        return None
    return done.stdout if done.returncode == 0 else None


def describe_source(root: Path) -> str:
    head = _git(root, "rev-parse", "--short", "HEAD")
    if head is None:
        return f"{root} (not a git checkout)"
    head = head.strip()
    paths = ("engine", "devices", "sensors", "content", "launcher.py", "tests/engine", "tests/devices", "tests/support")
    changed = _git(root, "status", "--porcelain", "--", *paths, "tests/conftest.py", "pyproject.toml") or ""
    files = sorted(line[3:] for line in changed.splitlines() if line[3:])
    return f"commit {head}" + (f", with uncommitted changes to {', '.join(files)}" if files else "")


def _session_members(session: int) -> list[int]:
    """Processes still in ``session`` (Linux: /proc); none elsewhere."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 3 and int(fields[3]) == session:
            found.append(int(entry.name))
    return found


def stop_leftovers(session: int) -> int:
    """Stop what the run's tests started and left behind (a Mosquitto under a test that was killed)."""
    left = _session_members(session)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 3
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = [pid for pid in left if pid in _session_members(session)]
        if not left:
            break
    return len(left)


def run_mutmut(root: Path, names: list[str], jobs: int) -> int:
    """``mutmut run`` on ``names`` from a fresh ``mutants/``, in a session of its own so that whatever its
    tests leave running can be found and stopped afterwards."""
    shutil.rmtree(root / "mutants", ignore_errors=True)
    command = [sys.executable, "-c", "from mutmut.__main__ import cli; cli()", "run", "--max-children", str(jobs)]
    process = subprocess.Popen([*command, *names], cwd=root, start_new_session=True)
    try:
        code = process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)  # mutmut stops its workers and keeps what it has
        code = process.wait()
    finally:
        left = stop_leftovers(process.pid)
        if left:
            print(f"{left} processes the tests started could not be stopped", file=sys.stderr)
    return code


def _snapshot(root: Path, out: Path) -> Path:
    """The files in scope as the run sees them, for the report's line numbers."""
    source_dir = out / "source"
    shutil.rmtree(source_dir, ignore_errors=True)
    for path in SCOPE:
        target = source_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / path, target)
    return source_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report folder (default: mutation-results/)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="mutants tested at once (default: cores)")
    parser.add_argument(
        "--only",
        metavar="MODULES",
        help="comma-separated modules of the scope (engine.safety,engine.show): a quick run",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="write the report from the last run's mutants/ without running"
    )
    args = parser.parse_args(argv)
    if importlib.util.find_spec("mutmut") is None:
        print("mutmut is not installed: `.venv/bin/pip install -e '.[test]'`", file=sys.stderr)
        return 1
    modules = {module_name(path) for path in SCOPE}
    only = frozenset(part.strip() for part in args.only.split(",")) if args.only else None
    if only is not None and not only <= modules:
        print(
            f"Not in the scope: {', '.join(sorted(only - modules))}; it has {', '.join(sorted(modules))}",
            file=sys.stderr,
        )
        return 2
    problems = scope_problems(ROOT)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    out: Path = args.out.resolve()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mutmut"]
    run_file = out / "run.json"
    if args.report_only:
        if not (ROOT / "mutants").is_dir():
            print("No mutants/ folder: run `python -m tests.mutation` first", file=sys.stderr)
            return 1
        run: dict[str, Any] = json.loads(run_file.read_text(encoding="utf-8")) if run_file.is_file() else {}
    else:
        out.mkdir(parents=True, exist_ok=True)
        _snapshot(ROOT, out)
        run = {
            "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "mutmut": importlib.metadata.version("mutmut"),
            "jobs": args.jobs,
            "command": " ".join(["python -m tests.mutation", *(argv if argv is not None else sys.argv[1:])]),
            "source": describe_source(ROOT),
            "tests": config.get("pytest_add_cli_args_test_selection", []),
            "only": sorted(only) if only else None,
        }
        started = time.monotonic()
        run["mutmut_exit"] = run_mutmut(ROOT, patterns(only), args.jobs)
        run["wall_s"] = round(time.monotonic() - started, 1)
        run_file.write_text(json.dumps(run, indent=1), encoding="utf-8")
    scope_only = frozenset(run["only"]) if run.get("only") else None
    mutants = collect(ROOT, out / "source" if (out / "source").is_dir() else None, scope_only)
    report = write(out, mutants, run)
    figures = summary(mutants)["all"]
    statuses = figures["statuses"]
    rate = figures["kill_rate"]
    print(
        f"{figures['mutants']} mutants: {statuses.get('killed', 0)} killed, {statuses.get('timeout', 0)} timeouts, "
        f"{statuses.get('survived', 0)} survived ({figures['equivalent']} explained as equivalent), "
        f"{statuses.get('no tests', 0)} without tests; kill rate "
        + ("–" if rate is None else f"{100 * rate:.1f} %")
        + f"; {report}"
    )
    return 0 if run.get("mutmut_exit") == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
