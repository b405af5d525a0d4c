"""The shape of the code, kept by tests: the engine holds no network code and imports no driver;
sensors, devices and content do not import each other; no import cycles; one public name per class;
small modules; nothing cites what a fresh clone does not have."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "sensors", "devices", "content")
NETWORK = (
    "socket",
    "ssl",
    "http",
    "urllib.request",
    "asyncio.streams",
    "aiomqtt",
    "paho",
    "pythonosc",
    "serial",
    "zeroconf",
)
MAX_LINES = 800
LONGER: dict[str, str] = {}
"""Modules allowed over MAX_LINES, each with the reason (the closing note repeats it)."""


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def imports(path: Path) -> list[tuple[str, bool]]:
    """Every module ``path`` imports, and whether the import runs with the module (not in a function or
    under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            inner = top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.extend((alias.name, inner) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.append((child.module, inner))
                found.extend((f"{child.module}.{alias.name}", inner) for alias in child.names)
            visit(child, inner)

    visit(tree, True)
    return found


def test_the_engine_holds_no_network_code_and_imports_no_driver():
    for name, path in modules().items():
        if not name.startswith("engine"):
            continue
        for imported, _ in imports(path):
            assert not any(imported == n or imported.startswith(n + ".") for n in NETWORK), (name, imported)
            assert imported.split(".")[0] not in ("sensors", "devices", "content"), (name, imported)


def test_sensors_devices_and_content_do_not_import_each_other():
    for name, path in modules().items():
        package = name.split(".")[0]
        if package == "engine":
            continue
        for imported, _ in imports(path):
            other = imported.split(".")[0]
            assert other == package or other not in PACKAGES or other == "engine", (name, imported)


def test_no_import_cycles():
    known = modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in known.items():
        for imported, at_import in imports(path):
            if at_import and imported in known and imported != name:
                graph[name].add(imported)
    state: dict[str, int] = {}

    def walk(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1 and not nxt.startswith(node) and not node.startswith(nxt):
                raise AssertionError("import cycle: " + " -> ".join([*trail, node, nxt]))
            if nxt not in state:
                walk(nxt, [*trail, node])
        state[node] = 2

    for name in sorted(known):
        if name not in state:
            walk(name, [])


def public_names(path: Path) -> list[str]:
    """The classes and type aliases (``Value = float | int``) a module defines at its top level."""
    names = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name[:1].isupper() and not name.isupper():  # CamelCase: an alias, not a CONSTANT
                names.append(name)
    return [name for name in names if not name.startswith("_")]


def test_no_two_public_classes_share_a_name():
    seen: dict[str, list[str]] = defaultdict(list)
    for name, path in modules().items():
        for public in public_names(path):
            seen[public].append(name)
    shared = {cls: where for cls, where in seen.items() if len(where) > 1}
    assert not shared, shared


def test_modules_stay_small():
    for path in modules().values():
        relative = str(path.relative_to(ROOT))
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= MAX_LINES or relative in LONGER, f"{relative} has {lines} lines"


def test_nothing_cites_files_outside_the_repository():
    outside = re.compile(r"\.\./shared|DESIGN\.md")
    files = [ROOT / "README.md", ROOT / "launcher.py", ROOT / "pyproject.toml", *ROOT.glob("exhibits/**/*.yaml")]
    for package in (*PACKAGES, "tests"):
        files += list((ROOT / package).rglob("*.py"))
    cited = [str(f.relative_to(ROOT)) for f in files if outside.search(f.read_text(encoding="utf-8"))]
    assert cited == []
