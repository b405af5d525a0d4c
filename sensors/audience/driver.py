"""The ``kind: audience`` sensor: the audience's phones, as signals (issue 19).

The real sensor runs the audience's web server in a process of its own (:mod:`sensors.audience.server`) and
sets the crowd's signals from the frames it sends, ``rate`` times a second; properties the show sets (a vote
opened, input paused) go back to it. A server that dies is started again with back-off, its phones reconnect
by themselves. ``--simulate`` runs a simulated crowd in the show's own process instead
(:mod:`sensors.audience.simulated`): no port is opened.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from engine.drivers import DriverContext, Fault, WritableSensor, check_fault
from engine.errors import UserError
from engine.reconnect import Backoff, Reconnect
from engine.worker_process import WorkerProcess, WorkerReply, WorkerStartError
from sensors.audience.model import AudienceSensorConfig, Label
from sensors.audience.server import ServerSettings, SetProps, StopServing, server_main
from sensors.audience.simulated import SimulatedCrowd
from sensors.audience.tls import TlsFilesError, server_context

log = logging.getLogger("sensors.audience")

START_TIMEOUT = 20.0
DEFAULT_TITLE = Label(zh="参与互动", en="Take part")


class AudienceSensor(WritableSensor):
    config: AudienceSensorConfig

    def __init__(self, name: str, config: AudienceSensorConfig, context: DriverContext) -> None:
        super().__init__(name, config, context)
        self.values: dict[str, Any] = config.initial_state()
        """What the show set last: sent again to a restarted server."""
        self.process: WorkerProcess | None = None
        self._first: tuple[WorkerProcess, dict[str, Any]] | None = None
        """The server :meth:`open` started, for :meth:`run` to take on."""
        self.port: int | None = None
        """The port the page listens on, once started (the configured one, or the one given for port 0)."""
        self._tls: tuple[str, str] | None = None
        """The certificate and key files (absolute), checked by :meth:`open`."""

    def set(self, values: Mapping[str, Any]) -> None:
        self.values.update(values)
        if self.process is not None:
            self.process.send(SetProps(dict(values)))

    async def go_safe(self, timeout: float) -> bool:
        self.set(self.config.safe_state())
        return True

    async def open(self) -> None:
        """Start the page's server: a port that is taken, or a certificate that cannot be used, stops the start
        here, in one sentence."""
        self._tls = self._tls_files()
        if self._tls is None and self.config.of_type("motion"):
            log.warning(
                "%s: phones share their motion only with an https page: give the audience sensor `tls:` (a "
                "certificate and key) for its motion to work / 手机只向 https 页面提供体感数据，"
                "请为观众传感器配置 `tls:`",
                self.name,
            )
        try:
            self._first = await self._start()
        except WorkerStartError as exc:
            where = f"{self.config.host}:{self.config.port}"
            if "address already in use" in str(exc).lower():
                raise UserError(
                    f"TCP port {self.config.port} is already in use, so the audience page of `{self.name}` "
                    f"cannot listen on {where}; stop the other program or choose another `port`."
                ) from None
            raise UserError(f"the audience page of `{self.name}` cannot start on {where}: {exc}") from None

    def _tls_files(self) -> tuple[str, str] | None:
        """The certificate and key, absolute, once they load: a bad pair stops the start in one sentence."""
        tls = self.config.tls
        if tls is None:
            return None
        cert, key = self.context.base_dir / tls.cert, self.context.base_dir / tls.key
        try:
            server_context(cert, key)
        except TlsFilesError as exc:
            raise UserError(
                f"The TLS certificate `{cert}` or key `{key}` of the audience page of `{self.name}` cannot be used: "
                f"{exc} (观众页面的 TLS 证书或私钥无法使用)."
            ) from None
        return str(cert.resolve()), str(key.resolve())

    async def _start(self) -> tuple[WorkerProcess, dict[str, Any]]:
        settings = ServerSettings(self.config, self.config.title or DEFAULT_TITLE, self._tls)
        process = WorkerProcess(server_main, settings, StopServing(), "audience server", self._reply)
        try:
            return process, await process.start(START_TIMEOUT)
        except BaseException:
            await process.close(1.0)
            raise

    async def run(self) -> None:
        retry = Reconnect(Backoff(), self.context.clock)
        while True:
            started, self._first = self._first, None
            if started is None:
                try:
                    started = await self._start()
                except WorkerStartError as exc:
                    self.health.set("offline", f"观众页面无法启动 / the audience page did not start: {exc}")
                    await self.context.clock.sleep(retry.next_delay())
                    continue
            process, info = started
            self.process, self.port = process, int(info["port"])
            retry.up()
            process.send(SetProps(dict(self.values)))
            self.health.set("ok")
            log.info("audience page of %s on port %d", self.name, self.port)
            try:
                await process.wait()
            finally:
                self.process = None
                if process.alive:  # cancelled: the runtime is stopping
                    await process.close(2.0)
            self.context.store.mark_stale(f"{self.name}.")
            self.health.set("offline", "观众页面已退出 / the audience page's process ended; starting it again")
            await self.context.clock.sleep(retry.next_delay())

    async def close(self) -> None:
        """A server :meth:`open` started that :meth:`run` never took (the start failed further on)."""
        started, self._first = self._first, None
        if started is not None:
            await started[0].close(2.0)

    def _reply(self, reply: WorkerReply) -> None:
        if reply[0] == "frame":
            _, _at, signals, health = reply
            self.publish(signals, health)

    def publish(self, signals: Mapping[str, Any], health: Mapping[str, Any]) -> None:
        store, prefix = self.context.store, f"{self.name}."
        for name, value in signals.items():
            store.set(prefix + name, value)
        for figure, value in health.items():
            self.health.figure(figure, value)


class SimulatedAudienceSensor(AudienceSensor):
    """A simulated crowd of phones tapping, voting, sliding and moving, in this process: no port is opened.
    Faults: ``disconnect`` (every phone gone, signals stale), ``stall`` (frames stop), ``clear``."""

    def __init__(self, name: str, config: AudienceSensorConfig, context: DriverContext) -> None:
        super().__init__(name, config, context)
        self.crowd = SimulatedCrowd(config)
        self.fault: Fault = "clear"

    def inject(self, fault: Fault) -> None:
        check_fault(self, fault, ("disconnect", "stall", "clear"))
        self.fault = fault
        if fault == "disconnect":
            self.context.store.mark_stale(f"{self.name}.")
            self.health.set("offline", "simulated disconnect")
        elif fault == "stall":
            self.health.set("degraded", "simulated stall: no frames")
        else:
            self.health.set("ok")

    async def open(self) -> None:
        log.info("audience %s is simulated: no port is opened", self.name)

    def set(self, values: Mapping[str, Any]) -> None:
        self.values.update(values)
        self.crowd.crowd.set(dict(values))

    async def run(self) -> None:
        clock = self.context.clock
        self.crowd.crowd.set(dict(self.values))
        self.health.set("ok")
        log.info("audience %s is simulated: %d phones arrive", self.name, self.crowd.phones)
        period = 1.0 / self.config.rate
        while True:
            await clock.sleep(period)
            if self.fault != "clear":
                continue
            now = clock.now()
            self.crowd.step(now, period)
            self.publish(self.crowd.crowd.frame(now), self.crowd.health(period))
