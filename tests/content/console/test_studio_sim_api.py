"""The studio's simulation commands over HTTP on a live (not simulated) exhibit and its console: an admin's
token is refused with a sentence (403) and nothing is pinned, released or recorded as done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.content.console.conftest import assemble_console, make_accounts, running_console


async def test_a_live_show_refuses_sim_input_from_an_admin_with_a_sentence(tmp_path: Path, mosquitto: Any) -> None:
    _, tokens = make_accounts(tmp_path / "accounts.json")
    runtime = assemble_console(tmp_path, mosquitto.url, simulate=False)
    assert runtime.options.simulate is False
    async with running_console(runtime, tokens) as console:
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        client = console.client()
        store = runtime.store
        store.set("panel.level", 0.25)
        async with client.post(
            "/api/v1/sim/input", json={"signal": "panel.level", "value": 0.9}, headers=admin
        ) as response:
            assert response.status == 403, await response.text()
            body = await response.json()
        assert body["status"] == "error" and body["code"] == "forbidden"
        assert "simulated run" in body["error"] and " / " in body["error"] and "模拟" in body["error"]
        assert dict(store.overrides) == {} and store.get("panel.level").value == 0.25
        async with client.post("/api/v1/sim/input/release", json={}, headers=admin) as response:
            assert response.status == 403 and (await response.json())["code"] == "forbidden"
        entries = console.audited("sim/input")
        assert len(entries) == 1 and entries[0]["ok"] is False and entries[0]["via"] == "http"
