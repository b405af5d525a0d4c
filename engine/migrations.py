"""Migrations of exhibit files from older format versions to the current one.

Each entry of ``MIGRATIONS`` turns a version-N document (plain data) into a
version-N+1 document. Version 1 is the first format, so the table is empty;
when v2 arrives, add ``MIGRATIONS[1] = _v1_to_v2`` and a test with a v1 file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.model import FORMAT_VERSION
from engine.problems import Problem
from engine.yamlpos import PositionedData

Migration = Callable[[dict[str, Any]], dict[str, Any]]
MIGRATIONS: dict[int, Migration] = {}
FIRST_VERSION = 1


def migrate(doc: PositionedData) -> list[Problem]:
    """Bring ``doc.data`` up to the current format in place; problems if it cannot be."""
    data = doc.data
    if "format_version" not in data:
        return [doc.problem((), "missing `format_version`", f"add `format_version: {FORMAT_VERSION}` at the top")]
    version = data["format_version"]
    path = ("format_version",)
    if not isinstance(version, int) or isinstance(version, bool):
        return [doc.problem(path, f"`format_version` must be a whole number, not {version!r}")]
    if version > FORMAT_VERSION:
        return [
            doc.problem(
                path,
                f"this file is format {version}, but this program reads formats up to {FORMAT_VERSION}",
                "update the exhibit controller",
            )
        ]
    if version < FIRST_VERSION:
        return [doc.problem(path, f"format_version {version} does not exist; the first is {FIRST_VERSION}")]
    while version < FORMAT_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
        data["format_version"] = version
    doc.data = data
    return []
