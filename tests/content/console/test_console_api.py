"""The console's HTTP API on a real running exhibit, over real HTTP: who may read, who may change
what, and that a refused request changes nothing."""

from __future__ import annotations

import asyncio
import json
import re
import time

import aiohttp

from tests.content.console.conftest import PASSWORDS, Console


async def test_the_openapi_description_is_readable_without_logging_in(console: Console):
    async with console.client().get("/api/openapi.json") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        spec = await response.json()
        headers = response.headers
    assert spec["openapi"].startswith("3.1")
    for path in ("/api/v1/go", "/api/v1/back", "/api/v1/panic", "/api/v1/estop/reset", "/api/v1/login"):
        assert path in spec["paths"], path
    state = spec["paths"]["/api/v1/state"]  # a reading (GET) and a command (POST) on one path
    assert state["get"]["security"] == [{"session": []}, {"token": []}]
    assert state["post"]["security"] == [{"session": [], "csrf": []}, {"token": []}]
    assert spec["paths"]["/api/v1/var"]["post"]["requestBody"]["content"]["application/json"]["schema"]["required"] == [
        "name",
        "value",
    ]
    text = json.dumps(spec)
    assert not any(secret in text for secret in [*PASSWORDS.values(), *console.tokens.values()])
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


async def test_a_wrong_password_gets_401_and_the_right_one_a_session_cookie(console: Console):
    client = console.client()
    async with client.post("/api/v1/login", json={"user": "ana", "password": "not it at all"}) as response:
        assert response.status == 401
        body = await response.json()
    assert body["code"] == "unauthorized" and " / " in body["error"]  # English / 中文
    async with client.post("/api/v1/login", json={"user": "ana", "password": PASSWORDS["ana"]}) as response:
        assert response.status == 200
        session = await response.json()
        cookie = response.headers["Set-Cookie"]
    assert session["user"] == "ana" and session["role"] == "operator" and len(session["csrf"]) > 20
    assert cookie.startswith("exhibit_session=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback: a Secure cookie would never come back
    async with client.get("/api/v1/session") as response:
        assert await response.json() == session
    assert [entry["ok"] for entry in console.audited("login")] == [False, True]


async def test_go_without_a_session_is_refused_and_changes_nothing(console: Console):
    async with console.client().post("/api/v1/go", json={}) as response:
        assert response.status == 401
        assert (await response.json())["code"] == "unauthorized"
    async with console.client().get("/api/v1/state") as response:
        assert response.status == 401  # reading needs a login too
    assert console.playhead == 0 and console.audited("go") == []


async def test_a_session_without_or_with_a_forged_csrf_token_changes_nothing(console: Console):
    client, csrf = await console.login("ana")
    for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": csrf[:-1] + "x"}):
        async with client.post("/api/v1/go", json={}, headers=headers) as response:
            assert response.status == 403, headers
            assert (await response.json())["code"] == "forbidden"
    assert console.playhead == 0 and console.audited("go") == []


async def test_a_request_from_another_site_is_refused_even_with_the_right_csrf(console: Console):
    client, csrf = await console.login("ana")
    headers = {"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
    async with client.post("/api/v1/go", json={}, headers=headers) as response:
        assert response.status == 403
    async with client.post("/api/v1/go", json={}, headers={"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"}) as r:
        assert r.status == 403
    try:
        await client.ws_connect("/api/v1/ws", origin="http://evil.example")
        raise AssertionError("the WebSocket opened for another site")
    except aiohttp.WSServerHandshakeError as refused:
        assert refused.status == 403
    assert console.playhead == 0
    own = {"X-CSRF-Token": csrf, "Origin": console.url}  # the console's own page
    async with client.post("/api/v1/go", json={}, headers=own) as response:
        assert response.status == 200
    assert console.playhead == 1


async def test_a_dns_rebinding_host_is_refused(console: Console):
    client, csrf = await console.login("ana")
    for path in ("/", "/api/openapi.json", "/api/v1/state"):
        async with client.get(path, headers={"Host": "evil.example"}) as response:
            assert response.status == 403, path
            assert "allowed_hosts" in (await response.json())["error"]
    async with client.post("/api/v1/go", json={}, headers={"Host": "evil.example", "X-CSRF-Token": csrf}) as r:
        assert r.status == 403
    port = console.url.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
        async with client.get("/api/v1/session", headers={"Host": host}) as response:
            assert response.status == 200, host
    assert console.playhead == 0


async def test_a_viewer_reads_everything_but_cannot_go(console: Console):
    client, csrf = await console.login("vic")
    async with client.post("/api/v1/go", json={}, headers={"X-CSRF-Token": csrf}) as response:
        assert response.status == 403
        body = await response.json()
    assert body == {"status": "error", "error": body["error"], "code": "forbidden"} and "/" in body["error"]
    for path in ("/api/v1/state", "/api/v1/catalogue", "/api/v1/commands", "/api/v1/audit", "/api/v1/log"):
        async with client.get(path) as response:
            assert response.status == 200, path
    assert console.playhead == 0
    assert [entry["ok"] for entry in console.audited("go")] == [False]  # refused, and written down


async def test_an_operator_go_moves_the_playhead_and_the_command_reaches_mosquitto(
    console: Console, mosquitto, subscriber
):
    heard = subscriber(mosquitto.port, "exhibit/consoletest/devices/wash/set")
    client, csrf = await console.login("ana")
    async with client.post("/api/v1/go", json={}, headers={"X-CSRF-Token": csrf}) as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok", "data": {"cue_list": "main", "standby": "2", "last": "1"}}
    async with client.get("/api/v1/state") as response:
        state = await response.json()
    assert state["v"] == 1
    assert state["topics"]["cuelist/main"]["playhead"] == 1 and state["topics"]["cuelist/main"]["last"] == "1"
    assert state["topics"]["show"]["locked"] is False
    line = await asyncio.to_thread(heard.wait_for, lambda text: '"level"' in text and "10" in text)
    assert json.loads(line.split(" ", 1)[1])["level"] == 10
    entry = console.audited("go")[-1]
    assert entry["who"] == "ana" and entry["via"] == "console" and entry["from"] == "127.0.0.1" and entry["ok"]


async def test_an_api_token_needs_no_csrf_and_a_wrong_one_is_refused(console: Console):
    client = console.client()
    bearer = {"Authorization": f"Bearer {console.tokens['operator']}"}
    async with client.post("/api/v1/go", json={}, headers=bearer) as response:
        assert response.status == 200
    async with client.post("/api/v1/go", headers={"Authorization": "Bearer nope"}) as response:
        assert response.status == 401
    async with client.post("/api/v1/go", headers={"Authorization": f"Bearer {console.tokens['viewer']}"}) as response:
        assert response.status == 403
    async with client.get("/api/v1/session", headers=bearer) as response:
        assert await response.json() == {"user": "operator-machine", "role": "operator", "csrf": None}
    assert console.playhead == 1
    assert console.audited("go")[0]["via"] == "http" and console.audited("go")[0]["who"] == "operator-machine"


async def test_the_show_lock_is_in_the_show_topic_and_refuses_reload(console: Console):
    admin = {"Authorization": f"Bearer {console.tokens['admin']}"}
    client = console.client()
    async with client.post("/api/v1/lock", headers=admin) as response:
        assert response.status == 200
    async with client.get("/api/v1/state", headers=admin) as response:
        assert (await response.json())["topics"]["show"]["locked"] is True
    async with client.post("/api/v1/reload", headers=admin) as response:
        assert response.status == 409
        assert (await response.json())["code"] == "conflict"
    async with client.post("/api/v1/unlock", headers={"Authorization": f"Bearer {console.tokens['operator']}"}) as r:
        assert r.status == 403  # only an admin unlocks


async def test_malformed_requests_get_a_bilingual_400_and_are_counted(console: Console):
    client, csrf = await console.login("ana")
    headers = {"X-CSRF-Token": csrf, "Content-Type": "application/json"}
    for body in (b"{not json", b"[1, 2]", b'"go"', b'{"cue": true}', b'{"cue_list": 1e999}', b'{"x": NaN}'):
        async with client.post("/api/v1/go", data=body, headers=headers) as response:
            assert response.status == 400, body
            error = await response.json()
            assert error["code"] == "bad_request" and " / " in error["error"], body
    async with client.post("/api/v1/var", json={"name": "visits", "value": 10**400}, headers=headers) as response:
        assert response.status == 400  # a 400-digit number is refused, not computed with
    async with client.post("/api/v1/login", json={"user": 1, "password": ["x"]}) as response:
        assert response.status == 400
    async with client.get("/api/v1/audit?limit=many") as response:
        assert response.status == 400
    async with client.post("/api/v1/go", data=b"x" * 100_000, headers=headers) as response:
        assert response.status == 413
    assert console.playhead == 0
    store = console.runtime.store
    deadline = time.monotonic() + 10
    while (store.get("console.health.refused").value or 0) < 10:  # the figures are published once a second
        assert time.monotonic() < deadline, store.get("console.health.refused").value
        await asyncio.sleep(0.1)
    assert store.get("console.health.requests").value >= 11


async def test_failed_logins_are_rate_limited(console: Console):
    client = console.client()
    for _ in range(5):
        async with client.post("/api/v1/login", json={"user": "ana", "password": "guess guess"}) as response:
            assert response.status == 401
    async with client.post("/api/v1/login", json={"user": "ana", "password": PASSWORDS["ana"]}) as response:
        assert response.status == 429  # even the right password, until the block ends
        assert int(response.headers["Retry-After"]) >= 1
        assert (await response.json())["code"] == "too_many_requests"
    assert [entry["ok"] for entry in console.audited("login")] == [False] * 5


async def test_logout_ends_the_session(console: Console):
    client, csrf = await console.login("ana")
    async with client.post("/api/v1/logout", headers={"X-CSRF-Token": "forged"}) as response:
        assert response.status == 403
    async with client.post("/api/v1/logout", headers={"X-CSRF-Token": csrf}) as response:
        assert response.status == 200
    async with client.get("/api/v1/session") as response:
        assert response.status == 401
    assert [entry["ok"] for entry in console.audited("logout")] == [True]


async def test_the_page_and_the_bundled_font_are_served_with_their_types_and_nothing_else_is(console: Console):
    client = console.client()
    async with client.get("/") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert response.headers["Cache-Control"] == "no-cache"
        page = await response.text()
    kinds = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".woff2": "font/woff2"}
    linked = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert linked, "the page links none of its files"
    for path in linked:  # every file the page names is there, with its type (no CDN: all under /static/)
        async with client.get(path) as response:
            assert response.status == 200, path
            suffix = path[path.rfind(".") :]
            assert response.headers["Content-Type"] == kinds.get(suffix, response.headers["Content-Type"]), path
    async with client.get("/static/fonts/wqy-microhei.ttc") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "font/collection"
        assert "max-age" in response.headers["Cache-Control"]
        assert (await response.content.read(4)) == b"ttcf"
    for path in ("/static/../console/server.py", "/static/%2e%2e/server.py", "/static/fonts/../../engine/errors.py",
                 "/static/.hidden", "/static/fonts/NOTICE/x"):  # fmt: skip
        async with client.get(path) as response:
            assert response.status == 404, path
            assert (await response.json())["code"] == "not_found"
