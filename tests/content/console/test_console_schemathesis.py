"""Property-based tests of the console's HTTP API from its own OpenAPI description (Schemathesis):
whatever the description allows, or nearly allows, the server never fails (no 5xx) and every answer
matches the description. The exhibit runs in a thread of its own, as it would in `exhibit run`, from its
file in the test's folder, so the curator studio's routes are there too: Schemathesis's drafts, saves,
restores and uploads land in that folder (or are refused), never outside it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from content.console.openapi import openapi
from content.console.service import ConsoleService
from engine.reload import ExhibitWatcher
from engine.runtime import Runtime
from tests.conftest import start_mosquitto
from tests.content.console.conftest import EXHIBIT, assemble_console, make_accounts

PREVIEW_STILL = "/api/v1/studio/preview.jpg"


@dataclass
class LiveConsole:
    url: str
    tokens: dict[str, str]
    runtime: Runtime
    folder: Path
    """The exhibit's folder: everything the studio writes stays in it."""
    around: set[Path]
    """What the two folders above it held once the exhibit ran (the test's folder, and pytest's)."""


def around(folder: Path) -> set[Path]:
    return {p for p in folder.parent.iterdir() if p != folder} | set(folder.parent.parent.iterdir())


@pytest.fixture(scope="module")
def live_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveConsole]:
    """One exhibit for every operation's examples (a start per operation would be most of the run)."""
    tmp_path = tmp_path_factory.mktemp("console")
    folder = tmp_path / "exhibit"
    folder.mkdir()
    file = folder / "exhibit.yaml"
    file.write_text(EXHIBIT, encoding="utf-8")
    mosquitto = start_mosquitto(tmp_path)
    _, tokens = make_accounts(tmp_path / "accounts.json")
    loop = asyncio.new_event_loop()
    (tmp_path / "state").mkdir()
    # From its file: the studio's routes exist, and a save or restore reloads what was written. The accounts
    # and the audit log are kept outside the exhibit's folder, as a real run keeps them.
    runtime = assemble_console(
        folder,
        mosquitto.url,
        exhibit_file=file,
        accounts=tmp_path / "accounts.json",
        audit_log=tmp_path / "state" / "audit.log",
    )
    ready = threading.Event()
    failed: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(runtime.start())
        except BaseException as exc:
            failed.append(exc)
            ready.set()
            return
        # A real reload from the file, as a watched run does (`reload`, a studio save or restore): no 503 for
        # lack of a watcher, and a save answers `applied` or `restart` rather than `off`.
        watcher = ExhibitWatcher(file, runtime.registry, runtime, runtime.clock)
        runtime.control.reloader = lambda: watcher.check(force=True)
        runtime.resources.put(watcher)  # as engine.session does: the studio applies its saves through it
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runtime.stop())

    thread = threading.Thread(target=serve, name="console-under-test", daemon=True)
    thread.start()
    assert ready.wait(60), "the exhibit did not start"
    if failed:
        raise failed[0]
    service = runtime.service("console")
    assert isinstance(service, ConsoleService)
    try:
        yield LiveConsole(service.url.rstrip("/"), tokens, runtime, folder, around(folder))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(60)
        loop.close()
        mosquitto.stop()


# The description the server serves is made from the command table at import: the same one is loaded
# here (schemathesis' lazy fixture loader does not run under pytest 9), and the test below checks that the
# live server serves exactly this.
schema = schemathesis.openapi.from_dict(openapi())
# The MJPEG preview is an endless stream (`multipart/x-mixed-replace`): a request for it never ends, so it is
# described but not called. Its one-frame sibling `preview.jpg` is called: this exhibit has no scene, so there
# is no render process and it answers at once (400 for a bad `width`, else 503 `unavailable`, as a
# `--no-render` run does), never waiting the 10 s it gives a render process; see `no_server_error` for the 503.
operations = schema.exclude(path="/api/v1/studio/preview.mjpg")


def test_the_live_server_serves_the_description_under_test(live_console: LiveConsole):
    import json
    import urllib.request

    with urllib.request.urlopen(f"{live_console.url}/api/openapi.json", timeout=10) as response:
        assert json.loads(response.read()) == schema.raw_schema


def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx, but for the one the description promises and this run must give: `preview.jpg` of a run that
    draws nothing is 503 `unavailable` (a refusal with a sentence, not a failure)."""
    if case.path == PREVIEW_STILL and response.status_code == 503 and response.json().get("code") == "unavailable":
        return None
    return not_a_server_error(ctx, response, case)


@operations.parametrize()
# Derandomized: the same examples every run, so CI never meets a new one by chance (one random run drew a
# value that the HTTP client itself, not the server, could not send).
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
def test_the_api_never_fails_and_keeps_to_its_description(case, live_console: LiveConsole):
    # An admin token reaches every command and the studio (admin only); without it most answers would be a
    # uniform 401 (or 403). A token needs no CSRF token, so the studio's changes are really made.
    case.call_and_validate(
        base_url=live_console.url,
        headers={"Authorization": f"Bearer {live_console.tokens['admin']}"},
        checks=[no_server_error, response_schema_conformance],
    )


def test_nothing_the_run_did_left_the_exhibit_folder(live_console: LiveConsole):
    """After the run above (same module, same exhibit): its uploads and saves stayed in the exhibit's folder
    (the server refuses `..`, absolute paths and links that lead out), and the exhibit file is still there."""
    assert around(live_console.folder) == live_console.around
    assert (live_console.folder / "exhibit.yaml").is_file()
