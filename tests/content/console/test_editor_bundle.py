"""The curator studio's vendored editor bundle (content/console/static/vendor/codemirror/), checked
without node: one self-contained ES module that loads nothing from elsewhere, exports
`createEditor`, carries the licence of every package inside it, and is exactly the file its README
records (so a hand edit is caught). The build's package.json pins exact versions.

Each check is a small function, tried first on a made-up bad input (so it can fail) and then on
the real files."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
EDITOR_SRC = ROOT / "content" / "console" / "editor"
VENDOR = ROOT / "content" / "console" / "static" / "vendor" / "codemirror"
BUNDLE = VENDOR / "editor.js"
LICENSES = VENDOR / "LICENSES.txt"
VENDOR_README = VENDOR / "README.md"
PACKAGE_JSON = EDITOR_SRC / "package.json"
PACKAGE_LOCK = EDITOR_SRC / "package-lock.json"

EXACT_VERSION = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")
# `import x from "y"`, `import {a} from"y"`, `export * from "y"`, `import "y"` (minified or not).
STATIC_IMPORT = re.compile(r"""(?:\bimport|\bexport)\s*(?:[\w*${}\s,]*?\s*\bfrom\s*)?["'`]([^"'`]+)["'`]""")
DYNAMIC_IMPORT = re.compile(r"""\bimport\s*\(\s*["'`]([^"'`]*)["'`]""")
REMOTE_CALL = re.compile(r"""\b(?:import|fetch|importScripts)\s*\(\s*["'`](?:https?:)?//""", re.IGNORECASE)
EXPORT_LIST = re.compile(r"\bexport\s*\{([^}]*)\}")
EXPORT_FUNCTION = re.compile(r"\bexport\s+(?:async\s+)?function\s*\*?\s*([A-Za-z_$][\w$]*)")
RECORDED_SHA = re.compile(r"SHA-256[^\n]*?`([0-9a-f]{64})`")


def non_relative_imports(js: str) -> list[str]:
    """Module specifiers the code imports that are not relative paths ("./x.js", "../x.js")."""
    found = [m.group(1) for m in STATIC_IMPORT.finditer(js)] + [m.group(1) for m in DYNAMIC_IMPORT.finditer(js)]
    return [spec for spec in found if not spec.startswith(("./", "../"))]


def remote_loads(js: str) -> list[str]:
    """`import(`/`fetch(` calls whose argument is an http(s) or protocol-relative URL."""
    return [m.group(0) for m in REMOTE_CALL.finditer(js)]


def exported_names(js: str) -> set[str]:
    names: set[str] = set()
    for m in EXPORT_LIST.finditer(js):
        for item in m.group(1).split(","):
            item = item.strip()
            if item:
                names.add(item.split(" as ")[-1].strip())
    names.update(m.group(1) for m in EXPORT_FUNCTION.finditer(js))
    return names


def unpinned(deps: dict[str, str]) -> list[str]:
    return [f"{name}@{spec}" for name, spec in deps.items() if not EXACT_VERSION.match(spec)]


def recorded_sha256(readme: str) -> str | None:
    m = RECORDED_SHA.search(readme)
    return m.group(1) if m else None


def licence_blocks(text: str) -> dict[str, tuple[str, str]]:
    """{package: (version, licence)} from the "name version (licence)" headings of LICENSES.txt."""
    heading = re.compile(r"^=+\n(\S+) (\S+) \(([^)]+)\)\n=+$", re.MULTILINE)
    return {m.group(1): (m.group(2), m.group(3)) for m in heading.finditer(text)}


def missing_licences(names: list[str], text: str) -> list[str]:
    blocks = licence_blocks(text)
    return [name for name in names if name not in blocks]


def package_json() -> dict:
    return json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- the checks catch bad inputs


@pytest.mark.parametrize(
    "bad",
    [
        'import{EditorView as e}from"@codemirror/view";',
        "import * as cm from 'codemirror';",
        'export{x}from"https://esm.sh/codemirror";',
        'import"/static/other.js";',
        'const m=await import("https://cdn.example/cm.js");',
    ],
)
def test_a_bare_or_remote_import_is_caught(bad: str) -> None:
    assert non_relative_imports(bad)


def test_relative_imports_and_plain_code_are_allowed() -> None:
    js = 'import{a}from"./chunk.js";export{b as createEditor};const s="import x from y";'
    assert non_relative_imports(js) == []


@pytest.mark.parametrize(
    "bad", ['fetch("https://cdn.example/schema.json")', "import( 'http://x/y.js')", 'fetch("//cdn.example/a")']
)
def test_a_runtime_load_from_the_network_is_caught(bad: str) -> None:
    assert remote_loads(bad)


def test_an_svg_namespace_string_is_not_a_network_load() -> None:
    assert remote_loads('document.createElementNS("http://www.w3.org/2000/svg","svg");fetch(url)') == []


def test_export_detection() -> None:
    assert exported_names("function f(){}export{f as createEditor};") == {"createEditor"}
    assert exported_names("export function createEditor(parent){}") == {"createEditor"}
    assert "createEditor" not in exported_names("function createEditor(){}export{createEditor as make};")


def test_ranges_and_tags_are_not_exact_pins() -> None:
    assert unpinned({"a": "^1.0.0", "b": "~2.1.0", "c": "latest", "d": "1.x", "e": ">=1", "f": "1.2.3"}) == [
        "a@^1.0.0",
        "b@~2.1.0",
        "c@latest",
        "d@1.x",
        "e@>=1",
    ]


def test_a_package_without_its_licence_block_is_caught() -> None:
    text = "=====\n@codemirror/view 6.0.0 (MIT)\n=====\n\nMIT License\n"
    assert missing_licences(["@codemirror/view", "@codemirror/state"], text) == ["@codemirror/state"]


def test_a_changed_byte_changes_the_digest() -> None:
    data = BUNDLE.read_bytes()
    assert hashlib.sha256(data + b" ").hexdigest() != hashlib.sha256(data).hexdigest()
    assert recorded_sha256("no digest here") is None


# ---------------------------------------------------------------- the real files


def test_the_bundle_is_one_self_contained_es_module() -> None:
    js = BUNDLE.read_text(encoding="utf-8")
    assert len(js) > 50_000, "editor.js looks truncated"
    assert non_relative_imports(js) == []
    assert remote_loads(js) == []
    assert "sourceMappingURL" not in js
    # The console's Content-Security-Policy has no 'unsafe-eval'.
    assert not re.search(r"\bnew Function\s*\(|\beval\s*\(", js)
    assert js.count("\n") < len(js) / 2000, "expected a minified bundle"


def test_the_bundle_exports_create_editor() -> None:
    assert "createEditor" in exported_names(BUNDLE.read_text(encoding="utf-8"))


def test_the_readme_records_the_bundles_sha256() -> None:
    recorded = recorded_sha256(VENDOR_README.read_text(encoding="utf-8"))
    assert recorded is not None, "README.md must record the SHA-256 of editor.js"
    actual = hashlib.sha256(BUNDLE.read_bytes()).hexdigest()
    assert recorded == actual, "editor.js differs from the build recorded in README.md: rebuild with node build.mjs"


def test_the_readme_says_how_to_rebuild() -> None:
    readme = VENDOR_README.read_text(encoding="utf-8")
    assert "cd content/console/editor && npm ci && node build.mjs" in readme


def test_package_json_pins_exact_versions() -> None:
    pkg = package_json()
    deps: dict[str, str] = pkg["dependencies"]
    dev: dict[str, str] = pkg["devDependencies"]
    assert "@codemirror/lang-yaml" in deps
    assert {"@codemirror/state", "@codemirror/view"} <= deps.keys() or "codemirror" in deps
    assert "esbuild" in dev
    assert unpinned(deps) == []
    assert unpinned(dev) == []


def test_the_lockfile_resolves_the_pinned_versions() -> None:
    lock = json.loads(PACKAGE_LOCK.read_text(encoding="utf-8"))
    pkg = package_json()
    installed = lock["packages"]
    for name, version in {**pkg["dependencies"], **pkg["devDependencies"]}.items():
        assert installed[f"node_modules/{name}"]["version"] == version, name


def test_licenses_name_every_pinned_package_with_its_licence() -> None:
    text = LICENSES.read_text(encoding="utf-8")
    deps: dict[str, str] = package_json()["dependencies"]
    assert missing_licences(list(deps), text) == []
    blocks = licence_blocks(text)
    for name, version in deps.items():
        assert blocks[name][0] == version, f"{name}: LICENSES.txt has {blocks[name][0]}, package.json pins {version}"
    assert "MIT" in text
    assert all(licence == "MIT" for _, licence in blocks.values()), blocks


def test_licenses_cover_every_package_the_readme_lists_as_bundled() -> None:
    readme = VENDOR_README.read_text(encoding="utf-8")
    bundled = re.findall(r"^\| (\S+) \| (\S+) \| (\S+) \|$", readme, re.MULTILINE)
    bundled = [row for row in bundled if row[0] not in ("package", "---")]
    assert len(bundled) >= 10, "the README's table of bundled packages is missing"
    blocks = licence_blocks(LICENSES.read_text(encoding="utf-8"))
    for name, version, _licence in bundled:
        assert blocks.get(name, ("", ""))[0] == version, name


def test_node_modules_is_ignored() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "content/console/editor/node_modules/" in ignored
