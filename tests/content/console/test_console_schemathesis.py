"""Property-based tests of the console's HTTP API from its own OpenAPI description (Schemathesis):
whatever the description allows, or nearly allows, the server never fails (no 5xx) and every answer
matches the description. The exhibit runs in a thread of its own, as it would in `exhibit run`."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from content.console.openapi import openapi
from content.console.service import ConsoleService
from engine.runtime import Runtime
from tests.conftest import start_mosquitto
from tests.content.console.conftest import assemble_console, make_accounts


@dataclass
class LiveConsole:
    url: str
    tokens: dict[str, str]
    runtime: Runtime


@pytest.fixture(scope="module")
def live_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveConsole]:
    """One exhibit for every operation's examples (a start per operation would be most of the run)."""
    tmp_path = tmp_path_factory.mktemp("console")
    mosquitto = start_mosquitto(tmp_path)
    _, tokens = make_accounts(tmp_path / "accounts.json")
    loop = asyncio.new_event_loop()
    runtime = assemble_console(tmp_path, mosquitto.url)
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
        # A real reload of the same file: `reload` answers like a watched run's (no 503 for lack of a watcher).
        runtime.control.reloader = lambda: runtime.reload(runtime.exhibit)
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
        yield LiveConsole(service.url.rstrip("/"), tokens, runtime)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(60)
        loop.close()
        mosquitto.stop()


# The description the server serves is made from the command table at import: the same one is loaded
# here (schemathesis' lazy fixture loader does not run under pytest 9), and the test below checks that the
# live server serves exactly this.
schema = schemathesis.openapi.from_dict(openapi())


def test_the_live_server_serves_the_description_under_test(live_console: LiveConsole):
    import json
    import urllib.request

    with urllib.request.urlopen(f"{live_console.url}/api/openapi.json", timeout=10) as response:
        assert json.loads(response.read()) == schema.raw_schema


@schema.parametrize()
# Derandomized: the same examples every run, so CI never meets a new one by chance (one random run drew a
# value that the HTTP client itself, not the server, could not send).
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
def test_the_api_never_fails_and_keeps_to_its_description(case, live_console: LiveConsole):
    # An admin token reaches every command; without it most answers would be a uniform 401.
    case.call_and_validate(
        base_url=live_console.url,
        headers={"Authorization": f"Bearer {live_console.tokens['admin']}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
