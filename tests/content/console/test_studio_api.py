"""The studio's HTTP API on a real running exhibit (simulated sensors, devices on a real Mosquitto): drafts
checked by the project's checker, saves that keep every version and hot-reload, the show lock, restores,
and uploads refused with a sentence when they are too big, of the wrong type or aimed outside the folder."""

from __future__ import annotations

import asyncio
import gzip
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from engine.reload import ExhibitWatcher
from engine.studio.assets import MiB
from tests.conftest import ROOT
from tests.content.console.conftest import Console, assemble_console, make_accounts, running_console

RECORDING = ROOT / "exhibits" / "canal-lanterns" / "recordings" / "visitors.jsonl.gz"
STUDIO_EXHIBIT = """\
format_version: 1
id: studiotest
title: {en: Studio test, zh: 工作室测试}
sensors:
  panel:
    kind: osc
    port: 9
    signals:
      level: {address: /level}
  body:
    kind: pose
    source: {camera: 0}
    simulate: recordings/visitors.jsonl.gz
devices:
  wash:
    kind: mqtt
    properties:
      level: {type: float, range: [0, 100], safe: 0}
variables:
  visits: 0
cues:
  main:
    guard: 0s
    cues:
      - {id: "1", actions: [{set: wash.level, value: 10}]}
"""
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture
async def studio(tmp_path: Path, mosquitto: Any) -> AsyncIterator[Console]:
    (tmp_path / "recordings").mkdir()
    shutil.copy(RECORDING, tmp_path / "recordings" / "visitors.jsonl.gz")
    file = tmp_path / "exhibit.yaml"
    file.write_text(STUDIO_EXHIBIT, encoding="utf-8")
    _, tokens = make_accounts(tmp_path / "accounts.json")
    runtime = assemble_console(tmp_path, mosquitto.url, STUDIO_EXHIBIT, exhibit_file=file)
    async with running_console(runtime, tokens) as running:
        watcher = ExhibitWatcher(file, runtime.registry, runtime, runtime.clock)
        runtime.control.reloader = lambda: watcher.check(force=True)
        runtime.resources.put(watcher)  # as engine.session does: the studio applies its saves through it
        yield running


def cue_value(studio: Console) -> Any:
    """The value cue 1 of the running exhibit sets (what a reload changes)."""
    return getattr(studio.runtime.exhibit.cues["main"].cues[0].actions[0], "value", None)


async def admin(studio: Console) -> tuple[Any, dict[str, str]]:
    client, csrf = await studio.login("ada")
    return client, {"X-CSRF-Token": csrf}


async def check(studio: Console, text: str) -> dict[str, Any]:
    client, headers = await admin(studio)
    async with client.post("/api/v1/studio/check", json={"text": text}, headers=headers) as response:
        assert response.status == 200, await response.text()
        result: dict[str, Any] = await response.json()
        return result


async def test_a_misspelt_key_is_reported_at_its_line_and_column(studio: Console) -> None:
    result = await check(studio, STUDIO_EXHIBIT.replace("variables:", "variabels:"))
    assert not result["ok"]
    [problem] = result["problems"]
    assert (problem["line"], problem["column"]) == (19, 1)
    assert "variabels" in problem["message"] and "variables" in problem["hint"]
    assert (await check(studio, STUDIO_EXHIBIT))["ok"]


async def test_a_missing_asset_is_reported_at_the_line_that_names_it(studio: Console) -> None:
    result = await check(studio, STUDIO_EXHIBIT.replace("recordings/visitors", "recordings/nobody"))
    [problem] = result["problems"]
    assert problem["line"] == 13
    assert "recordings/nobody.jsonl.gz" in problem["message"]


async def test_only_an_admin_may_use_the_studio(studio: Console) -> None:
    client, csrf = await studio.login("ana")
    async with client.post("/api/v1/studio/check", json={"text": "x"}, headers={"X-CSRF-Token": csrf}) as response:
        assert response.status == 403
        assert "admin" in (await response.json())["error"]
    client, _ = await admin(studio)
    async with client.post("/api/v1/studio/check", json={"text": "x"}) as response:
        assert response.status == 403  # no CSRF token
    async with studio.client().get("/api/v1/studio/file") as response:
        assert response.status == 401


async def test_a_draft_with_problems_is_not_saved(studio: Console, tmp_path: Path) -> None:
    client, headers = await admin(studio)
    bad = STUDIO_EXHIBIT.replace("variables:", "variabels:")
    async with client.post("/api/v1/studio/save", json={"text": bad}, headers=headers) as response:
        assert response.status == 400
        body = await response.json()
    assert body["problems"][0]["line"] == 19
    assert (tmp_path / "exhibit.yaml").read_text(encoding="utf-8") == STUDIO_EXHIBIT
    assert studio.audited("studio save")[-1]["ok"] is False


async def test_a_valid_save_is_kept_as_a_version_and_reloads_the_show(studio: Console, tmp_path: Path) -> None:
    client, headers = await admin(studio)
    async with client.get("/api/v1/studio/file") as response:
        opened = await response.json()
    changed = STUDIO_EXHIBIT.replace("value: 10", "value: 42")
    body = {"text": changed, "base": opened["sha256"], "note": "brighter"}
    async with client.post("/api/v1/studio/save", json=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        saved = await response.json()
    assert saved["reload"] == "applied"
    assert (tmp_path / "exhibit.yaml").read_text(encoding="utf-8") == changed
    assert studio.runtime.reloads == 1
    assert cue_value(studio) == 42
    async with client.get("/api/v1/studio/history") as response:
        versions = (await response.json())["versions"]
    assert [v["number"] for v in versions] == [2, 1]  # the file as first seen is version 1: nothing is lost
    assert versions[0]["user"] == "ada" and versions[0]["note"] == "brighter"
    assert not leftovers(tmp_path)  # no temporary file left behind
    assert studio.audited("studio save")[-1]["ok"] is True


async def test_saving_is_refused_while_the_show_lock_is_on(studio: Console, tmp_path: Path) -> None:
    client, headers = await admin(studio)
    async with client.post("/api/v1/lock", json={}, headers=headers) as response:
        assert response.status == 200
    changed = STUDIO_EXHIBIT.replace("value: 10", "value: 11")
    async with client.post("/api/v1/studio/save", json={"text": changed}, headers=headers) as response:
        assert response.status == 409
        assert "lock" in (await response.json())["error"]
    assert (tmp_path / "exhibit.yaml").read_text(encoding="utf-8") == STUDIO_EXHIBIT


async def test_a_save_based_on_an_old_version_is_refused(studio: Console, tmp_path: Path) -> None:
    client, headers = await admin(studio)
    async with client.get("/api/v1/studio/file") as response:
        opened = await response.json()
    (tmp_path / "exhibit.yaml").write_text(STUDIO_EXHIBIT + "# someone else\n", encoding="utf-8")
    body = {"text": STUDIO_EXHIBIT.replace("value: 10", "value: 12"), "base": opened["sha256"]}
    async with client.post("/api/v1/studio/save", json=body, headers=headers) as response:
        assert response.status == 409
    assert (tmp_path / "exhibit.yaml").read_text(encoding="utf-8").endswith("# someone else\n")


async def test_an_earlier_version_can_be_compared_and_restored(studio: Console, tmp_path: Path) -> None:
    client, headers = await admin(studio)
    changed = STUDIO_EXHIBIT.replace("value: 10", "value: 55")
    async with client.post("/api/v1/studio/save", json={"text": changed}, headers=headers) as response:
        assert response.status == 200
    async with client.get("/api/v1/studio/history/1/diff") as response:
        diff = (await response.json())["diff"]
    assert '-      - {id: "1", actions: [{set: wash.level, value: 10}]}' in diff
    assert '+      - {id: "1", actions: [{set: wash.level, value: 55}]}' in diff
    async with client.post("/api/v1/studio/history/1/restore", json={}, headers=headers) as response:
        assert response.status == 200, await response.text()
        restored = await response.json()
    assert restored["version"]["restored_from"] == 1 and restored["version"]["number"] == 3
    assert (tmp_path / "exhibit.yaml").read_text(encoding="utf-8") == STUDIO_EXHIBIT
    assert cue_value(studio) == 10
    async with client.get("/api/v1/studio/history/9") as response:
        assert response.status == 404


# --- uploads -------------------------------------------------------------------------------------------


async def put(studio: Console, path: str, data: Any, **headers: str) -> tuple[int, dict[str, Any]]:
    client, csrf = await admin(studio)
    async with client.put(f"/api/v1/studio/assets/{path}", data=data, headers={**csrf, **headers}) as response:
        return response.status, await response.json()


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith((".upload-", ".exhibit.yaml."))]


async def test_an_image_is_uploaded_into_the_exhibit_folder(studio: Console, tmp_path: Path) -> None:
    status, body = await put(studio, "images/%E7%81%AF%E7%AC%BC.png", PNG)  # images/灯笼.png
    assert status == 200, body
    assert (tmp_path / "images" / "灯笼.png").read_bytes() == PNG
    status, body = await put(studio, "images/%E7%81%AF%E7%AC%BC.png", PNG)
    assert status == 409 and "exists" in body["error"]
    status, _ = await put(studio, "images/%E7%81%AF%E7%AC%BC.png?replace=1", PNG + b"more")
    assert status == 200 and (tmp_path / "images" / "灯笼.png").read_bytes() == PNG + b"more"
    assert studio.audited("studio upload")[-1]["ok"] is True


async def test_a_missing_recording_is_found_once_it_is_uploaded(studio: Console, tmp_path: Path) -> None:
    draft = STUDIO_EXHIBIT.replace("recordings/visitors", "recordings/evening")
    assert not (await check(studio, draft))["ok"]
    status, body = await put(studio, "recordings/evening.jsonl.gz", RECORDING.read_bytes())
    assert status == 200, body
    assert (await check(studio, draft))["ok"]


async def test_an_oversized_upload_is_refused_with_a_sentence(studio: Console, tmp_path: Path) -> None:
    status, body = await put(studio, "images/huge.png", PNG + b"\0" * (16 * MiB))
    assert status == 413
    assert "larger than 16 MiB" in body["error"]

    async def stream() -> AsyncIterator[bytes]:  # no Content-Length: refused as the bytes pass the limit
        yield PNG
        for _ in range(17):
            yield b"\0" * MiB

    status, body = await put(studio, "images/streamed.png", stream())
    assert status == 413
    assert not (tmp_path / "images" / "huge.png").exists() and not (tmp_path / "images" / "streamed.png").exists()
    assert not leftovers(tmp_path)


async def test_a_wrongly_typed_upload_is_refused_with_a_sentence(studio: Console, tmp_path: Path) -> None:
    status, body = await put(studio, "images/photo.png", b"GIF89a this is not a PNG at all, really")
    assert status == 400 and "is not a PNG image" in body["error"]
    status, body = await put(studio, "models/boat.glb", b'{"asset": {"version": "2.0"}} not binary glTF')
    assert status == 400 and "binary glTF" in body["error"]
    status, body = await put(studio, "tools/run.exe", b"MZ" + b"\0" * 64)
    assert status == 400 and "not a kind of file" in body["error"]
    status, body = await put(studio, "recordings/bad.jsonl.gz", gzip.compress(b"not json\n"))
    assert status == 400 and "pose recording" in body["error"]
    assert not (tmp_path / "images" / "photo.png").exists() and not leftovers(tmp_path)


@pytest.mark.parametrize(
    "path",
    ["..%2Foutside.png", "images/..%2F..%2Foutside.png", "%2Fetc%2Foutside.png", ".history/v00001.png", "exhibit.yaml"],
)
async def test_a_path_outside_the_exhibit_folder_is_refused(studio: Console, tmp_path: Path, path: str) -> None:
    status, body = await put(studio, path, PNG)
    assert status in (400, 404), body
    assert not (tmp_path.parent / "outside.png").exists() and not (tmp_path / ".history" / "v00001.png").exists()
    assert (tmp_path / "exhibit.yaml").read_text(encoding="utf-8") == STUDIO_EXHIBIT


async def test_a_link_that_leads_out_of_the_folder_is_refused(studio: Console, tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (tmp_path / "images").symlink_to(outside)
    status, body = await put(studio, "images/x.png", PNG)
    assert status == 400 and "outside" in body["error"]
    assert not list(outside.iterdir())


async def test_uploads_wait_for_the_show_lock_too(studio: Console, tmp_path: Path) -> None:
    client, headers = await admin(studio)
    async with client.post("/api/v1/lock", json={}, headers=headers) as response:
        assert response.status == 200
    status, body = await put(studio, "images/during-the-show.png", PNG)
    assert status == 409 and "lock" in body["error"]
    assert not (tmp_path / "images" / "during-the-show.png").exists()


async def test_two_uploads_racing_for_one_new_name_cannot_both_win(studio: Console, tmp_path: Path) -> None:
    results = await asyncio.gather(*(put(studio, "images/race.png", PNG + bytes([n]) * 64) for n in range(4)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 409, 409, 409], results
    assert not leftovers(tmp_path)


async def test_a_preview_of_a_run_that_draws_nothing_is_refused_at_once(studio: Console) -> None:
    client, _ = await admin(studio)
    for path in ("/api/v1/studio/preview.mjpg", "/api/v1/studio/preview.jpg"):
        async with client.get(path) as response:
            assert response.status == 503
            assert "scene" in (await response.json())["error"]
