"""The console as a service of the running exhibit: where it listens, what it prints, what it refuses."""

from __future__ import annotations

import errno
import re
import socket
import ssl
from pathlib import Path

import aiohttp
import pytest

from engine.errors import UserError
from tests.content.console.conftest import PASSWORDS, assemble_console, make_accounts, running_console

TLS_EXHIBIT_SECTION = "console:\n  tls: {cert: console.crt, key: console.key}\n"


async def test_with_no_account_run_prints_a_login_link_that_works_once(tmp_path: Path, mosquitto, capsys):
    runtime = assemble_console(tmp_path, mosquitto.url)
    async with running_console(runtime) as console:
        printed = capsys.readouterr().out
        found = re.search(r"Console / 控制台: (http://127\.0\.0\.1:\d+/)login\?token=(\S+)", printed)
        assert found, printed
        assert found.group(1) == console.service.url
        link = f"/login?token={found.group(2)}"
        browser = console.client()
        async with browser.get(link, allow_redirects=False) as response:
            assert response.status == 302 and response.headers["Location"] == "/"
            assert "HttpOnly" in response.headers["Set-Cookie"]
        async with browser.get("/api/v1/session") as response:
            session = await response.json()
        assert session["role"] == "admin" and session["user"] == "local"
        async with console.client().get(link, allow_redirects=False) as response:
            assert response.status == 401  # once only
            assert "exhibit user add" in (await response.json())["error"]
        assert [(e["action"], e["ok"]) for e in console.audited("login link")] == [("login link", True),
                                                                                   ("login link", False)]  # fmt: skip
        assert found.group(2) not in str(list(console.runtime.events.log_lines))  # the log shows no token


async def test_with_an_account_the_url_is_printed_without_a_link(tmp_path: Path, mosquitto, capsys):
    make_accounts(tmp_path / "accounts.json")
    async with running_console(assemble_console(tmp_path, mosquitto.url)) as console:
        printed = capsys.readouterr().out
        assert f"Console / 控制台: {console.service.url}\n" in printed and "token" not in printed


async def test_listening_beyond_loopback_without_an_account_is_refused_in_one_sentence(tmp_path: Path, mosquitto):
    runtime = assemble_console(tmp_path, mosquitto.url, console_host="0.0.0.0")
    with pytest.raises(UserError) as refused:
        await runtime.start()
    assert str(refused.value) == (
        "The console listens on 0.0.0.0 but no account exists; create one with "
        "`exhibit user add NAME --role operator` (控制台对外监听前请先创建账户)."
    )


async def test_beyond_loopback_with_an_account_it_answers_on_the_address_it_was_reached_by(tmp_path: Path, mosquitto):
    make_accounts(tmp_path / "accounts.json")
    runtime = assemble_console(tmp_path, mosquitto.url, console_host="0.0.0.0")
    async with running_console(runtime) as console:
        port = console.service.port
        client = console.client()
        async with client.post("/api/v1/login", json={"user": "ana", "password": PASSWORDS["ana"]}) as response:
            assert response.status == 200
        async with client.get("/api/v1/session", headers={"Host": f"127.0.0.1:{port}"}) as response:
            assert response.status == 200
        async with client.get("/api/v1/session", headers={"Host": f"evil.example:{port}"}) as response:
            assert response.status == 403


def occupy(port: int) -> socket.socket | None:
    """A listening socket on ``port``, or None when something else holds it already."""
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", port))
    except OSError as exc:
        holder.close()
        assert exc.errno == errno.EADDRINUSE
        return None
    holder.listen()
    return holder


async def test_the_default_port_in_use_means_a_free_one_and_a_chosen_port_in_use_a_sentence(
    tmp_path: Path, mosquitto, caplog
):
    make_accounts(tmp_path / "accounts.json")
    holder = occupy(8080)
    try:
        runtime = assemble_console(tmp_path, mosquitto.url, console_port=None)
        async with running_console(runtime) as console:
            assert console.service.port not in (0, 8080)
            async with console.client().get("/api/openapi.json") as response:
                assert response.status == 200
        assert [r for r in caplog.records if "8080 is in use" in r.getMessage()] != []
        runtime = assemble_console(tmp_path, mosquitto.url, console_port=8080)
        with pytest.raises(UserError, match=r"8080: the port is in use; choose another with `--console-port`"):
            await runtime.start()
    finally:
        if holder is not None:
            holder.close()


async def test_with_a_certificate_it_speaks_https_and_the_cookie_is_secure(tmp_path: Path, mosquitto, cert, capsys):
    make_accounts(tmp_path / "accounts.json")
    text = (Path(__file__).parent / "conftest.py").read_text(encoding="utf-8")
    exhibit = text.split('EXHIBIT = """\\\n', 1)[1].split('"""', 1)[0] + TLS_EXHIBIT_SECTION
    runtime = assemble_console(tmp_path, mosquitto.url, text=exhibit)
    async with running_console(runtime) as console:
        assert console.service.url.startswith("https://127.0.0.1:")
        assert f"Console / 控制台: {console.service.url}" in capsys.readouterr().out
        trust = ssl.create_default_context(cafile=str(cert[0]))
        client = console.client(connector=aiohttp.TCPConnector(ssl=trust))
        async with client.post("/api/v1/login", json={"user": "ana", "password": PASSWORDS["ana"]}) as response:
            assert response.status == 200
            assert "Secure" in response.headers["Set-Cookie"]
        with pytest.raises(aiohttp.ClientError):
            async with console.client().get(console.service.url.replace("https", "http")) as response:
                await response.read()


async def test_a_certificate_that_cannot_be_read_is_one_sentence(tmp_path: Path, mosquitto):
    conftest = (Path(__file__).parent / "conftest.py").read_text(encoding="utf-8")
    exhibit = conftest.split('EXHIBIT = """\\\n', 1)[1].split('"""', 1)[0] + TLS_EXHIBIT_SECTION
    runtime = assemble_console(tmp_path, mosquitto.url, text=exhibit)
    with pytest.raises(UserError, match=r"The console's TLS certificate .*console\.crt.* cannot be used"):
        await runtime.start()


async def test_no_console_builds_none(tmp_path: Path, mosquitto):
    runtime = assemble_console(tmp_path, mosquitto.url, console=False)
    await runtime.start()
    try:
        assert runtime.service("console") is None
        assert runtime.health["console"].reason == "not used in this run"
    finally:
        await runtime.stop()
