"""The console as a service of the running exhibit: an aiohttp server in the exhibit's own event loop
(default ``http://127.0.0.1:8080``), started after the MQTT services and closed before them.

``--console-host``/``--console-port`` win over the exhibit file's ``console:``; ``--no-console`` builds
none. Listening on anything but loopback needs an account. While there is none, the start prints a
one-time login link (an admin session for whoever opens it on this computer).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
import ssl
from typing import TYPE_CHECKING, Any

from engine.control.accounts import Accounts, LoginLimiter, LoginLinks, Sessions
from engine.control.settings import ConsoleSettings
from engine.errors import UserError
from engine.health import ComponentHealth
from engine.model import StoreType
from engine.registry import ServiceSpec

if TYPE_CHECKING:
    from aiohttp import web

    from content.console.context import ConsoleContext
    from engine.runtime import Runtime

log = logging.getLogger("content.console")

FIGURES: dict[str, StoreType] = {"requests": "int", "refused": "int", "clients": "int"}
MEANINGS = {
    "requests": "HTTP requests answered since start",
    "refused": "requests refused (malformed, not logged in, forbidden, rate-limited)",
    "clients": "live WebSocket clients now",
}
WILDCARDS = frozenset({"", "0.0.0.0", "::"})
RECHECK = 5.0
"""Seconds between checks that each live socket's session or token still holds."""


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConsoleService:
    name = "console"

    def __init__(
        self,
        runtime: Runtime,
        settings: ConsoleSettings,
        host: str,
        port: int,
        explicit_port: bool,
        accounts: Accounts,
        health: ComponentHealth,
    ) -> None:
        self.runtime, self.settings, self.accounts, self.health = runtime, settings, accounts, health
        self.host, self.port, self.explicit_port = host, port, explicit_port
        self.url = ""
        """The console's address once started (``http://127.0.0.1:8080/``)."""
        self.context: ConsoleContext | None = None
        self._runner: web.AppRunner | None = None
        self._figures: tuple[int, int, int] | None = None

    _where = ""
    """The line for the terminal: the console's address, or the one-time login link."""

    async def start(self) -> None:
        # aiohttp is imported here, not with the registry: `check` and `schema` never load it.
        from aiohttp import web

        from content.console.context import ConsoleContext
        from content.console.server import build_app

        if not is_loopback(self.host) and not self.accounts.has_users:
            raise UserError(
                f"The console listens on {self.host} but no account exists; create one with "
                "`exhibit user add NAME --role operator` (控制台对外监听前请先创建账户)."
            )
        tls = self._tls()
        self.context = ConsoleContext(
            self.runtime,
            self.accounts,
            Sessions(accounts=self.accounts),
            LoginLinks(),
            LoginLimiter(),
            tls=tls is not None,
            hosts=self._hosts(),
        )
        runner = web.AppRunner(build_app(self.context), handle_signals=False, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            await self._listen(runner, tls)
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self._announce()
        self.health.set("ok")

    def _tls(self) -> ssl.SSLContext | None:
        if self.settings.tls is None:
            return None
        base = self.runtime.context.base_dir
        cert, key = base / self.settings.tls.cert, base / self.settings.tls.key
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
            raise UserError(
                f"The console's TLS certificate `{cert}` or key `{key}` cannot be used: {reason} "
                "(控制台的 TLS 证书或私钥无法使用)."
            ) from None
        return context

    def _hosts(self) -> frozenset[str]:
        names = {"localhost", "127.0.0.1", "::1", *(host.lower().rstrip(".") for host in self.settings.allowed_hosts)}
        if self.host.lower() not in WILDCARDS:
            names.add(self.host.lower().strip("[]"))
        if not is_loopback(self.host):  # reached over the network by this machine's name, too
            machine = socket.gethostname().lower()
            names |= {machine, f"{machine}.local"}
        return frozenset(names)

    async def _listen(self, runner: web.AppRunner, tls: ssl.SSLContext | None) -> None:
        from aiohttp import web

        where = f"{self.host}:{self.port}"
        try:
            site = web.TCPSite(runner, self.host, self.port, ssl_context=tls)
            try:
                await site.start()
            except OSError:
                await site.stop()
                raise
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise UserError(
                    f"The console cannot listen on {where}: {exc.strerror or exc} (控制台无法在该地址监听)."
                ) from None
            if self.explicit_port:
                raise UserError(
                    f"The console cannot listen on {where}: the port is in use; choose another with `--console-port` "
                    f"or `console.port` in the exhibit file (控制台端口 {self.port} 已被占用)."
                ) from None
            log.warning(
                "port %d is in use; the console takes a free port instead / 端口 %d 已被占用，控制台改用空闲端口",
                self.port,
                self.port,
            )
            await web.TCPSite(runner, self.host, 0, ssl_context=tls).start()

    def _announce(self) -> None:
        assert self.context is not None
        shown = "127.0.0.1" if self.host.lower() in WILDCARDS else self.host
        if ":" in shown:
            shown = f"[{shown.strip('[]')}]"
        self.url = f"{self.context.scheme}://{shown}:{self.port}/"
        if self.runtime.options.studio:
            # `exhibit studio`: on this computer only, so a one-time link even when accounts exist.
            line = f"Studio / 工作室: {self.url}login?token={self.context.links.issue('admin')}&next=/studio"
            log.info(
                "Studio / 工作室: %s (open the login link printed on the terminal / 请打开终端上的登录链接)", self.url
            )
        elif self.accounts.has_users:
            line = f"Console / 控制台: {self.url}"
            log.info("%s", line)
        else:
            # The token goes to the terminal only: the log is read by every viewer, in the console too.
            line = f"Console / 控制台: {self.url}login?token={self.context.links.issue('admin')}"
            log.info(
                "Console / 控制台: %s (no account yet: open the login link printed on the terminal, or create one "
                "with `exhibit user add NAME --role operator` / 尚无账户：请打开终端上显示的登录链接)",
                self.url,
            )
        self._where = line

    async def run(self) -> None:
        from content.console.websocket import end_socket, still_allowed

        # Said once everything has started (run begins after the show does), so it is the last thing the
        # terminal shows at start: where a newcomer looks next.
        if self._where:
            print(
                f"{self._where}\n  open it in a browser; Ctrl+C stops the exhibit / 在浏览器中打开；按 Ctrl+C 停止展项",
                flush=True,
            )
            self._where = ""

        since_check = 0.0
        while True:
            await asyncio.sleep(1.0)
            self._publish()
            since_check += 1.0
            if since_check >= RECHECK and self.context is not None:
                since_check = 0.0
                for ws, who in list(self.context.sockets.items()):
                    if not still_allowed(self.context, who):
                        end_socket(ws)

    def _publish(self) -> None:
        ctx = self.context
        if ctx is None:
            return
        figures = (ctx.requests, ctx.refused, len(ctx.sockets))
        if figures != self._figures:
            self._figures = figures
            for name, value in zip(FIGURES, figures, strict=True):
                self.health.figure(name, value)

    async def close(self, timeout: float) -> None:
        from content.console.websocket import close_sockets

        if self.context is not None:
            await close_sockets(self.context, timeout)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._publish()
        self.health.stopped()


def _build(runtime: Runtime) -> ConsoleService | None:
    options = runtime.options
    if not options.console:
        return None
    settings = runtime.exhibit.console
    explicit = options.console_port is not None or "port" in settings.model_fields_set
    port = options.console_port if options.console_port is not None else settings.port
    accounts = Accounts(options.accounts or Accounts.default_path())
    health = runtime.context.health_of("console", "service", FIGURES)
    return ConsoleService(runtime, settings, options.console_host or settings.host, port, explicit, accounts, health)


def _applies(exhibit: Any) -> bool:
    return bool(exhibit.console.enabled)


SERVICE = ServiceSpec("console", order=50, applies=_applies, build=_build, figures=FIGURES, meanings=MEANINGS)
