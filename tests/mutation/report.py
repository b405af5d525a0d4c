"""Reading mutmut's results for the mutants in scope, and writing the report.

mutmut keeps, for each mutated file, ``mutants/<file>.meta`` (each mutant's exit code) and ``mutants/<file>``
(the original of each function, ``<name>__mutmut_orig``, beside its mutants, ``<name>__mutmut_<n>``). A
survivor's diff is the difference between the two; its line is counted in the copy of the source taken when the
run started (``<out>/source/``), so the report stays right while the working tree moves on.

A survivor that changes nothing observable is explained in ``tests/mutation/equivalent.toml`` by its identity:
the module, the function, the original line and (optionally) the mutated line. Such survivors are shown as
explained and counted apart in the second kill rate.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.mutation.scope import SCOPE, in_scope, module_name, unmangled

EQUIVALENT_FILE = Path(__file__).with_name("equivalent.toml")
DETECTED = ("killed", "timeout", "segfault", "caught by type check")
"""What counts as a mutant the tests detected (a timeout: the tests never finished with it)."""
UNTESTED = ("not checked", "skipped", "check was interrupted by user")
"""Results that say nothing about the tests (an interrupted run): left out of every rate."""


@dataclass(frozen=True)
class Equivalent:
    module: str
    function: str
    line: str
    """The original line, without its indentation."""
    why: str
    mutations: tuple[str, ...] | None = None
    """The mutated lines it covers; None: every mutation of ``line`` in ``function``."""

    def matches(self, mutant: Mutant) -> bool:
        return (
            mutant.module == self.module
            and mutant.function == self.function
            and mutant.before == self.line
            and (self.mutations is None or mutant.after in self.mutations)
        )


@dataclass
class Mutant:
    name: str
    """mutmut's name, ``engine.show.xǁShowǁpanic__mutmut_3`` (``mutmut show NAME`` shows it too)."""
    module: str
    function: str
    path: str
    status: str
    line: int | None = None
    before: str = ""
    after: str = ""
    diff: str = ""
    why: str | None = None
    """Why it changes nothing observable (a survivor explained in equivalent.toml)."""

    @property
    def detected(self) -> bool:
        return self.status in DETECTED


@dataclass
class Tally:
    mutants: int = 0
    detected: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    equivalent: int = 0

    def add(self, mutant: Mutant) -> None:
        if mutant.status in UNTESTED:
            self.statuses[mutant.status] += 1
            return
        self.mutants += 1
        self.statuses[mutant.status] += 1
        self.detected += mutant.detected
        self.equivalent += mutant.why is not None

    @property
    def kill_rate(self) -> float | None:
        return self.detected / self.mutants if self.mutants else None

    @property
    def kill_rate_without_equivalents(self) -> float | None:
        relevant = self.mutants - self.equivalent
        return self.detected / relevant if relevant else None


def load_equivalents(paths: Iterable[Path] | None = None) -> list[Equivalent]:
    """The explained survivors: equivalent.toml, and every file in equivalent/ (one per area of the code)."""
    if paths is None:
        paths = [EQUIVALENT_FILE, *sorted(EQUIVALENT_FILE.with_suffix("").glob("*.toml"))]
    return [entry for path in paths for entry in _load_equivalents(path)]


def _load_equivalents(path: Path) -> list[Equivalent]:
    data = tomllib.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    found = []
    for index, entry in enumerate(data.get("equivalent", [])):
        missing = [key for key in ("module", "function", "line", "why") if not entry.get(key)]
        if missing:
            raise ValueError(f"{path.name}: entry {index + 1} has no {', '.join(missing)}")
        mutation = entry.get("mutation")
        mutations = [mutation] if isinstance(mutation, str) else mutation
        found.append(
            Equivalent(
                entry["module"],
                entry["function"],
                entry["line"].strip(),
                " ".join(entry["why"].split()),
                tuple(m.strip() for m in mutations) if mutations else None,
            )
        )
    return found


def functions_of(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """Top-level functions and methods of top-level classes, by name (methods as ``Class.name``)."""
    found: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    found[f"{node.name}.{item.name}"] = item
    return found


def _mangled_functions(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """A mutants file's generated functions by their own names (``xǁShowǁpanic__mutmut_3``)."""
    return {name.rpartition(".")[2]: node for name, node in functions_of(tree).items() if "__mutmut_" in name}


def _lines(source: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> list[str]:
    lines = source[node.lineno - 1 : node.end_lineno]
    lines[0] = re.sub(r"def \S+?\(", f"def {name}(", lines[0], count=1)
    return lines


def _describe(mutant: Mutant, original: list[str], mutated: list[str], def_line: int | None) -> None:
    """Fill in the mutant's line, before/after and a unified diff numbered as in the source."""
    matcher = difflib.SequenceMatcher(a=original, b=mutated, autojunk=False)
    changes = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    if not changes:
        return
    _, a_start, a_end, b_start, b_end = changes[0]
    mutant.before = "\n".join(line.strip() for line in original[a_start:a_end])
    mutant.after = "\n".join(line.strip() for line in mutated[b_start:b_end])
    offset = (def_line - 1) if def_line is not None else 0
    if def_line is not None:
        mutant.line = def_line + a_start

    def renumber(match: re.Match[str]) -> str:
        return f"@@ -{int(match[1]) + offset}{match[2] or ''} +{int(match[3]) + offset}{match[4] or ''} @@"

    diff = difflib.unified_diff(original, mutated, fromfile=mutant.path, tofile=mutant.path, n=1, lineterm="")
    mutant.diff = "\n".join(re.sub(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@", renumber, line) for line in diff)


def collect(root: Path, source_dir: Path | None, only: frozenset[str] | None = None) -> list[Mutant]:
    """Every mutant in scope with its result; diffs for those the tests did not detect."""
    from mutmut.stats import status_by_exit_code

    equivalents = load_equivalents()
    mutants: list[Mutant] = []
    for path in SCOPE:
        module = module_name(path)
        if only is not None and module not in only:
            continue
        meta_path = root / "mutants" / f"{path}.meta"
        if not meta_path.is_file():
            continue
        exit_codes: dict[str, int | None] = json.loads(meta_path.read_text(encoding="utf-8"))["exit_code_by_key"]
        here = []
        for name, code in exit_codes.items():
            function = unmangled(name.rpartition(".")[2].partition("__mutmut_")[0])
            if in_scope(module, function):
                here.append(Mutant(name, module, function, path, status_by_exit_code[code]))
        undetected = [m for m in here if not m.detected and m.status not in UNTESTED]
        if undetected:
            mutated_source = (root / "mutants" / path).read_text(encoding="utf-8")
            generated = _mangled_functions(ast.parse(mutated_source))
            source_file = (source_dir / path) if source_dir is not None else (root / path)
            if not source_file.is_file():
                source_file = root / path
            originals = functions_of(ast.parse(source_file.read_text(encoding="utf-8")))
            lines = mutated_source.splitlines()
            for mutant in undetected:
                generated_name = mutant.name.rpartition(".")[2]
                orig = generated.get(generated_name.partition("__mutmut_")[0] + "__mutmut_orig")
                mutated = generated.get(generated_name)
                if orig is None or mutated is None:
                    continue
                short = mutant.function.rpartition(".")[2]
                def_node = originals.get(mutant.function)
                _describe(
                    mutant,
                    _lines(lines, orig, short),
                    _lines(lines, mutated, short),
                    def_node.lineno if def_node is not None else None,
                )
                if mutant.status == "survived":
                    mutant.why = next((e.why for e in equivalents if e.matches(mutant)), None)
        mutants.extend(sorted(here, key=_order))
    return mutants


def _order(mutant: Mutant) -> tuple[str, int]:
    return mutant.function, int(mutant.name.rpartition("__mutmut_")[2] or 0)


def stale_equivalents(mutants: Iterable[Mutant]) -> list[Equivalent]:
    """Entries of equivalent.toml that explain no survivor of this run (killed now, or the code changed)."""
    survivors = [m for m in mutants if m.status == "survived"]
    modules = {m.module for m in mutants}
    return [e for e in load_equivalents() if e.module in modules and not any(e.matches(m) for m in survivors)]


def _mutations(entry: Equivalent) -> str:
    return "any mutation" if entry.mutations is None else ", ".join(f"`{m}`" for m in entry.mutations)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def tallies(mutants: Iterable[Mutant]) -> tuple[Tally, dict[str, Tally], dict[tuple[str, str], Tally]]:
    overall = Tally()
    by_module: defaultdict[str, Tally] = defaultdict(Tally)
    by_function: defaultdict[tuple[str, str], Tally] = defaultdict(Tally)
    for mutant in mutants:
        overall.add(mutant)
        by_module[mutant.module].add(mutant)
        by_function[(mutant.module, mutant.function)].add(mutant)
    return overall, dict(by_module), dict(by_function)


def _row(name: str, tally: Tally) -> str:
    s = tally.statuses
    other = tally.mutants - s["killed"] - s["timeout"] - s["survived"] - s["no tests"]
    return (
        f"| {name} | {tally.mutants} | {s['killed']} | {s['timeout']} | {s['survived'] - tally.equivalent} "
        f"| {tally.equivalent} | {s['no tests']} | {other} | {_rate(tally.kill_rate)} "
        f"| {_rate(tally.kill_rate_without_equivalents)} |"
    )


HEADER = (
    "| | mutants | killed | timeout | survived, unexplained | survived, equivalent | no tests | other | kill rate "
    "| kill rate, equivalents left out |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _mutant_item(mutant: Mutant) -> list[str]:
    where = f"{mutant.path}:{mutant.line}" if mutant.line is not None else mutant.path
    out = [f"- `{where}` ({mutant.status}; `{mutant.name}`)"]
    if mutant.diff:
        out += ["", "  ```diff", *(f"  {line}" for line in mutant.diff.splitlines()), "  ```", ""]
    return out


def _grouped(mutants: list[Mutant]) -> list[str]:
    out: list[str] = []
    groups: dict[tuple[str, str], list[Mutant]] = defaultdict(list)
    for mutant in mutants:
        groups[(mutant.module, mutant.function)].append(mutant)
    for (module, function), members in groups.items():
        out += [f"### {module} · {function} ({len(members)})", ""]
        for mutant in members:
            out += _mutant_item(mutant)
        out.append("")
    return out


def _explained(mutants: list[Mutant]) -> list[str]:
    """Explained survivors, briefly: each reason once, then its mutants as `line: before -> after`."""
    out: list[str] = []
    groups: dict[tuple[str, str, str], list[Mutant]] = defaultdict(list)
    for mutant in mutants:
        groups[(mutant.module, mutant.function, mutant.why or "")].append(mutant)
    for (module, function, why), members in groups.items():
        out += [f"### {module} · {function} ({len(members)})", "", why, ""]
        for mutant in members:
            before, after = (text.replace("\n", " ") for text in (mutant.before, mutant.after))
            out.append(f"- `{mutant.path}:{mutant.line}` `{before}` → `{after}`")
        out.append("")
    return out


def markdown(mutants: list[Mutant], run: dict[str, Any]) -> str:
    overall, by_module, by_function = tallies(mutants)
    survivors = [m for m in mutants if m.status == "survived" and m.why is None]
    explained = [m for m in mutants if m.why is not None]
    untested = [m for m in mutants if m.status == "no tests"]
    other = [m for m in mutants if not m.detected and m.status not in ("survived", "no tests", *UNTESTED)]
    stale = stale_equivalents(mutants)
    lines = [
        "# Mutation testing: the safety code",
        "",
        f"- Run: {run.get('started', 'unknown')}, {_minutes(run.get('wall_s'))} wall, mutmut "
        f"{run.get('mutmut', '?')}, {run.get('jobs', '?')} workers; `{run.get('command', 'python -m tests.mutation')}`",
        f"- Source: {run.get('source', 'unknown')}",
        f"- Tests: `{' '.join(run.get('tests', []))}`",
        f"- Scope: {_count(len(by_function), 'function')} with mutants in {_count(len(by_module), 'module')} "
        "(tests/mutation/scope.py)",
        "- Kill rate: mutants the tests detected (killed, or a timeout) over all mutants; the second leaves out "
        "the survivors explained as equivalent in tests/mutation/equivalent.toml.",
        "",
        "## Figures",
        "",
        HEADER,
        _row("**all**", overall),
        *(_row(module, tally) for module, tally in sorted(by_module.items())),
        "",
    ]
    if run.get("mutmut_exit") not in (None, 0):
        lines += [f"**mutmut exited with {run['mutmut_exit']}: the figures may be incomplete.**", ""]
    lines += [f"## Survivors ({len(survivors)})", ""]
    lines += _grouped(survivors) if survivors else ["None.", ""]
    if untested:
        lines += [f"## No test runs this code ({len(untested)})", "", *_grouped(untested)]
    if other:
        lines += [f"## Other results ({len(other)})", "", *_grouped(other)]
    lines += [f"## Equivalent survivors, explained ({len(explained)})", ""]
    lines += _explained(explained) if explained else ["None.", ""]
    if stale:
        lines += [f"## Entries of equivalent.toml that explain nothing in this run ({len(stale)})", ""]
        lines += [f"- {e.module} · {e.function}: `{e.line}` -> {_mutations(e)}" for e in stale] + [""]
    lines += [
        "## Per function",
        "",
        HEADER.replace("| |", "| function |", 1),
        *(_row(f"{module} · {function}", tally) for (module, function), tally in sorted(by_function.items())),
        "",
    ]
    return "\n".join(lines)


def summary(mutants: list[Mutant]) -> dict[str, Any]:
    overall, by_module, _ = tallies(mutants)

    def figures(tally: Tally) -> dict[str, Any]:
        return {
            "mutants": tally.mutants,
            "detected": tally.detected,
            "statuses": dict(tally.statuses),
            "equivalent": tally.equivalent,
            "kill_rate": tally.kill_rate,
            "kill_rate_without_equivalents": tally.kill_rate_without_equivalents,
        }

    return {"all": figures(overall), "modules": {name: figures(t) for name, t in sorted(by_module.items())}}


def write(out: Path, mutants: list[Mutant], run: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    report = out / "mutation-report.md"
    report.write_text(markdown(mutants, run), encoding="utf-8")
    data = {"run": run, "figures": summary(mutants), "mutants": [asdict(m) for m in mutants]}
    (out / "mutation-results.json").write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    return report
