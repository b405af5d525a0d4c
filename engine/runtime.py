"""The running exhibit, and the one way to build it: :func:`assemble`.

``run``, ``shot``, ``bench`` and the tests all call :func:`assemble`, which gives a :class:`Runtime`
with the exhibit's signal catalogue, its health board and the services its registry says it has.
:meth:`Runtime.start` then brings everything up in an explicit order:

1. the services, by their ``order`` (the embedded broker, then the MQTT link that connects to it,
   OSCQuery, the render process...), each built and started before the next;
2. the drivers (sensors, then devices), which find the services they use in the resources;
3. the sensors' ports are opened (a port in use stops the start here, in one sentence);
4. the show's logic, the fade engine, and every task under the supervisor.

:meth:`Runtime.stop` goes the other way: logic and inputs stop, every output is brought to its safe
state, then the services close in reverse order (the MQTT link says ``offline`` last).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine.analytics.recorder import AnalyticsRecorder
from engine.authority import TAKEOVER_AFTER, Authority, NodeRole, SiteView
from engine.catalogue import Catalogue, build_catalogue
from engine.clock import Clock, MonotonicClock
from engine.control.audit import AuditLog
from engine.control.commands import Controller
from engine.control.hub import EventHub
from engine.drivers import Device, DriverContext, MessageDevice, Resources, Sensor, Service, WritableSensor
from engine.exhibit import ExhibitBase
from engine.fades import FadeEngine
from engine.health import HealthBoard
from engine.model import DeviceConfig, Outputs, SensorConfig
from engine.recovery import CRASH_WINDOW, Keeper, Recovered, RecoveryFile
from engine.registry import Registry, ServiceSpec
from engine.safety import Safety
from engine.show import Messenger, Show
from engine.show_memory import ShowMemory, capture, restore_after_restart, restore_standby
from engine.signals import SignalStore
from engine.supervisor import Supervisor

log = logging.getLogger("engine.runtime")

RenderMode = Literal["window", "offscreen", "off"]
HARDWARE_SECTIONS = ("sensors", "devices", "mqtt")
"""What a hot reload cannot change: the connections and ports the running exhibit holds."""


def settle_memory() -> None:
    """Move everything built so far (models, drivers, the show) out of the garbage collector's sight.

    The exhibit's objects live as long as the process, yet every full collection walks them all:
    with 512 fixtures at 44 Hz that is a 70-90 ms pause twice a second, which stalls the fade
    ticks and the sensor-to-device path alike. ``gc.freeze()`` keeps collecting what is made
    from now on and is the documented remedy (CPython's gc docs, "freeze")."""
    gc.collect()
    gc.freeze()


@dataclass
class RuntimeOptions:
    simulate: bool = False
    """Simulated sensors instead of hardware (devices are real: on the embedded broker by default)."""
    fade_rate: float = 44.0
    """Fades and timelines are rendered at this rate (the DMX refresh), coalesced per device."""
    base_dir: Path | None = None
    """The exhibit's folder (files it names are relative to it); default: the working directory."""
    safe_timeout: float = 2.0
    """How long a clean stop waits for devices to confirm their safe state."""
    broker: str | None = None
    """``mqtt://host:port`` of the broker, over the exhibit's ``mqtt.broker``."""
    embedded_port: int = 1883
    """Port of the embedded broker (a free one is used if it is taken; 0: any free port)."""
    render: RenderMode = "off"
    """Draw the scene in a window, offscreen, or not at all."""
    audit_log: Path | None = None
    """Where control actions are recorded (JSON lines, rotated); None: in memory only."""
    state_dir: Path | None = None
    """This node's own folder for what must outlive the process: the show's state for crash recovery, the
    crash record, log files, health history. None: nothing is kept (tests, benchmarks)."""
    console: bool = True
    """Serve the operator's web console (``--no-console``: not in this run)."""
    console_host: str | None = None
    """Over the exhibit's ``console.host``."""
    console_port: int | None = None
    """Over the exhibit's ``console.port``."""
    accounts: Path | None = None
    """The accounts file (users and API tokens); None: the default place for this machine."""
    exhibit_file: Path | None = None
    """The exhibit file this run was loaded from: the studio edits it (None: no studio, e.g. in benchmarks)."""
    node: str = ""
    """This computer's name in the show network (default: the host name)."""
    role: NodeRole | None = None
    """In a show network with a backup: ``primary`` or ``backup`` (MQTT 5, epochs, takeover); None: alone."""
    site_prefix: str | None = None
    """Topics of the show network (default: ``<mqtt.prefix>/site``)."""
    takeover_after: float = TAKEOVER_AFTER
    """A backup takes over when the driving node's heartbeat has been silent this long (seconds)."""
    studio: bool = False
    """``exhibit studio``: the start prints a one-time login link to the studio page, even with accounts, and
    outputs other than MQTT (DMX, OSC) are simulated."""


@dataclass
class Runtime:
    exhibit: ExhibitBase
    registry: Registry
    resources: Resources = field(default_factory=Resources)
    options: RuntimeOptions = field(default_factory=RuntimeOptions)
    clock: Clock = field(default_factory=MonotonicClock)
    service_specs: Sequence[ServiceSpec] = ()
    """The services to build at start, in order (:func:`assemble` gives the exhibit's)."""

    def __post_init__(self) -> None:
        self.store = SignalStore(self.clock)
        self.catalogue: Catalogue = build_catalogue(self.exhibit, self.registry)
        self.catalogue.declare(self.store)
        self.health = HealthBoard(self.store, self.clock)
        self.supervisor = Supervisor(self.clock)
        base_dir = self.options.base_dir or Path.cwd()
        self.context = DriverContext(self.exhibit.id, self.store, self.clock, self.resources, base_dir, self.health)
        self.services: list[Service] = []
        self.sensors: dict[str, Sensor] = {}
        self.devices: dict[str, Device] = {}
        self.fades = FadeEngine(self.clock, self.options.fade_rate)
        self.safety = Safety()
        self.show: Show | None = None
        self.reloads = 0
        self.recovery = RecoveryFile.in_folder(self.options.state_dir) if self.options.state_dir else None
        self.recovered: Recovered | None = None
        self.keeper: Keeper | None = None
        self.safe_mode = False
        """Started after too many crashes: devices safe, motion disarmed, no show logic, until an operator ends it."""
        self._held_show: Show | None = None
        node = self.options.node or platform.node()
        self.authority = (
            Authority(node, self.options.role, self.options.takeover_after) if self.options.role is not None else None
        )
        """Who drives the devices, in a show network with a backup (None: this node alone drives them)."""
        if self.authority is not None:
            self.resources.put(self.authority)  # DMX and OSC outputs hold back while another node drives
        prefix = self.options.site_prefix or f"{self.exhibit.mqtt.prefix}/site"
        self.site = SiteView(prefix, node, self.authority)
        self.analytics = self._analytics()
        """Visitor analytics, when the exhibit keeps them and this run has a state folder."""
        self.mode_listeners: list[Callable[[], None]] = []
        """Told when the node's mode changes (safe mode left...): the MQTT link says it on the status topic."""
        self.control = Controller(self, AuditLog(self.options.audit_log))
        """The operator's commands, for every surface (console, OSC, MQTT)."""
        self.events = EventHub(self, self.control)
        """The show's state as protocol events, for every surface."""

    @property
    def sensor_configs(self) -> dict[str, SensorConfig]:
        return self.exhibit.sensors

    @property
    def device_configs(self) -> dict[str, DeviceConfig]:
        return self.exhibit.devices

    def service(self, name: str) -> Service | None:
        return next((s for s in self.services if s.name == name), None)

    async def start(self) -> None:
        """Build and start everything, in order; a ``UserError`` (a port in use...) stops the start and
        closes whatever had started."""
        self._begin_recovery()
        try:
            await self._start_services()
            self._build_drivers()
            await self._open_sensors()
        except BaseException:
            await self._close_services()
            raise
        outputs = self._outputs()
        for name, (target, outputs_config) in outputs.items():
            if outputs_config.is_motion():
                self.safety.add_motion(name, outputs_config.safe_state())
            setter = self.safety.gate(name, target.set)
            self.fades.add_target(name, setter, outputs_config.initial_state(), outputs_config.max_rate())
        for device in self.devices.values():
            device.before_show()
        show = self._new_show(self.exhibit, {name: config for name, (_, config) in outputs.items()})
        memory = self.recovered.memory if self.recovered else None
        if memory is not None:
            restore_after_restart(show, self.safety, memory)
        if self.safe_mode:
            self._held_show = show  # built, never started: no logic until an operator ends safe mode
        else:
            self.show = show

        self.supervisor.start("fades", self.fades.run)
        self.supervisor.start("events", self.events.run)
        for service in self.services:
            self.supervisor.start(f"service:{service.name}", service.run)
        for name, device in self.devices.items():
            self.supervisor.start(f"device:{name}", device.run)
        for name, sensor in self.sensors.items():
            self.supervisor.start(f"sensor:{name}", sensor.run)
        if self.show is not None:
            self.show.start()
            if memory is not None:
                restore_standby(self.show, memory)
        self._keep_memory(memory)
        if self.analytics is not None:
            pose = [name for name, config in self.sensor_configs.items() if config.kind == "pose"]
            self.analytics.bind(self.store, list(self.exhibit.states), pose)
            if self.show is not None:
                self.analytics.follow_cues(self.show.cue_lists)
            self.supervisor.start("analytics", self.analytics.run)
        settle_memory()
        log.info(
            "exhibit %s started: %d sensors, %d devices, %d mappings, services: %s%s",
            self.exhibit.id,
            len(self.sensors),
            len(self.devices),
            len(self.exhibit.mappings),
            ", ".join(s.name for s in self.services) or "none",
            " (simulated sensors)" if self.options.simulate else "",
        )

    def _analytics(self) -> AnalyticsRecorder | None:
        settings = self.exhibit.analytics
        if not settings.enabled or self.options.state_dir is None or self.options.studio:
            return None  # nothing on disk: disabled, a test or benchmark, or a curator's studio session
        recorder = AnalyticsRecorder(
            self.exhibit.id,
            settings,
            self.options.state_dir,
            simulated=self.options.simulate,
            wall=lambda: self.clock.wall().timestamp(),
            sleep=self.clock.sleep,
        )
        self.resources.put(recorder.measures)  # the pose sensors feed it
        return recorder

    def _begin_recovery(self) -> None:
        """Read what the last run left (crash or clean stop) and say that this one runs."""
        if self.recovery is None:
            return
        try:
            self.recovered = self.recovery.begin()
        except OSError as exc:
            log.error(
                "恢复文件无法写入 / cannot keep the show's state in %s (%s): no crash recovery", self.recovery.path, exc
            )
            self.recovery = None
            return
        recovered = self.recovered
        if recovered.crashed:
            log.warning(
                "上次运行异常结束 / the last run did not stop cleanly: %d crash%s in the last %d minutes",
                len(recovered.crashes),
                "" if len(recovered.crashes) == 1 else "es",
                int(CRASH_WINDOW // 60),
            )
        if recovered.safe_mode:
            self.safe_mode = True
            log.error(
                "安全模式：设备安全，运动锁定，逻辑停止，等待操作员 / SAFE MODE after %d crashes: devices "
                "safe, motion disarmed, no show logic; an operator ends it (console, or the `safe-mode/leave` command)",
                len(recovered.crashes),
            )

    def _keep_memory(self, memory: ShowMemory | None) -> None:
        if self.recovery is None:
            return

        def now() -> ShowMemory | None:
            return capture(self.show, self.safety) if self.show is not None else None

        self.keeper = Keeper(self.recovery, now)
        self.keeper.saved = memory
        self.safety.listeners.append(self.keeper.changed)
        self.supervisor.start("recovery", self.keeper.run)

    @property
    def mode(self) -> str:
        """``safe-mode``, ``tracking`` (a node of a show network that does not drive the devices) or ``running``."""
        if self.safe_mode:
            return "safe-mode"
        if self.authority is not None and not self.authority.driving:
            return "tracking"
        return "running"

    def leave_safe_mode(self) -> bool:
        """An operator ends safe mode: the crash record is cleared and the show's logic starts (motion stays
        disarmed until armed). False when not in safe mode."""
        if not self.safe_mode or self._held_show is None:
            return False
        if self.recovery is not None:
            self.recovery.leave_safe_mode()
        self.safe_mode = False
        self.show, self._held_show = self._held_show, None
        self.show.start(arm=False)
        if self.analytics is not None:
            self.analytics.follow_cues(self.show.cue_lists)
        memory = self.recovered.memory if self.recovered else None
        if memory is not None:
            restore_standby(self.show, memory)
        if self.keeper is not None:
            self.keeper.saved = None  # written again, now without safe mode
            self.keeper.changed()
        log.warning("安全模式已结束 / safe mode ended by an operator: the show's logic runs; motion stays disarmed")
        for listener in list(self.mode_listeners):
            listener()
        return True

    async def _start_services(self) -> None:
        for spec in self.service_specs:
            service = spec.build(self)
            if service is None:
                unused = self.health.add(spec.name, "service", spec.figures)
                unused.in_use = False
                unused.set("offline", "not used in this run", expected=True)
                continue
            await service.start()
            self.services.append(service)
            self.resources.put(service)  # later services and the drivers find it here (the link finds the broker)

    def _build_drivers(self) -> None:
        for name, config in self.sensor_configs.items():
            spec = self.registry.sensors[config.kind]
            build = spec.simulate if self.options.simulate else spec.create
            self.sensors[name] = build(name, config, self.context)
        for name, device_config in self.device_configs.items():
            device_spec = self.registry.devices[device_config.kind]
            # The studio puts no light or sound on the venue's network: DMX and OSC outputs are simulated there;
            # MQTT devices talk to the run's broker (the embedded one unless `--broker` names another).
            contained = self.options.studio and device_config.kind != "mqtt"
            build_device = device_spec.simulate if contained else device_spec.create
            self.devices[name] = build_device(name, device_config, self.context)

    async def _open_sensors(self) -> None:
        opened: list[Sensor] = []
        try:
            for sensor in self.sensors.values():
                await sensor.open()
                opened.append(sensor)
        except BaseException:
            for sensor in opened:
                await sensor.close()
            raise

    def _new_show(self, exhibit: ExhibitBase, outputs: dict[str, Outputs]) -> Show:
        return Show(exhibit, self.store, self.clock, self.fades, outputs, self.safety, self._messengers())

    def _messengers(self) -> dict[str, Messenger]:
        """Devices that send whole messages (`{osc: ...}` actions), each behind the safety gate."""
        found: dict[str, Messenger] = {}
        for name, device in self.devices.items():
            if isinstance(device, MessageDevice):
                found[name] = self.safety.gate_message(name, device.send_message)
        return found

    def reload(self, exhibit: ExhibitBase) -> bool:
        """Let a new version (validated already) take over, without a visible glitch: sensors, devices and
        the broker keep their connections, machines keep their states, variables their values, running
        fades go on, and a timeline that was playing plays on from where it was, with its new keyframes.
        Services follow (a changed scene restarts the render process with it). Changes to sensors,
        devices or MQTT need a restart: then nothing changes and False is returned."""
        changed = [
            key for key in HARDWARE_SECTIONS if _content(getattr(exhibit, key)) != _content(getattr(self.exhibit, key))
        ]
        if changed:
            log.warning(
                "reload: %s changed; restart the exhibit to apply them (the running version goes on unchanged)",
                " and ".join(changed),
            )
            return False
        assert self.show is not None
        old = self.show
        keep = {name: machine.state for name, machine in old.machines.items()}
        carried = old.carry()
        old.stop()
        self.exhibit = exhibit
        self.catalogue = build_catalogue(exhibit, self.registry)
        self.catalogue.declare(self.store)
        self.show = self._new_show(exhibit, dict(old.outputs))
        self.show.start(keep=keep, carried=carried)  # it releases pins on what latches the e-stop now
        if self.analytics is not None:
            self.analytics.follow_cues(self.show.cue_lists)
        if self.store.overrides:  # pins on inputs this version no longer has, or no longer lets be pinned
            from engine.studio.simulation import overridable

            allowed = {info.name for info in overridable(self)}
            if gone := [name for name in sorted(self.store.overrides) if name not in allowed]:
                for name in gone:
                    self.store.release(name)
                log.warning("reload: released the pin on %s: no longer an input that can be pinned", ", ".join(gone))
        for service in self.services:
            follow = getattr(service, "reload", None)
            if follow is not None:
                follow(exhibit, self.catalogue)
        self.reloads += 1
        settle_memory()
        log.info("reload: the new logic runs (states kept: %s)", ", ".join(f"{k}={v}" for k, v in keep.items()) or "-")
        return True

    def _outputs(self) -> dict[str, tuple[Device | WritableSensor, Outputs]]:
        """Everything logic may drive: devices, and sensors that take commands."""
        found: dict[str, tuple[Device | WritableSensor, Outputs]] = {
            name: (device, self.device_configs[name]) for name, device in self.devices.items()
        }
        for name, sensor in self.sensors.items():
            if isinstance(sensor, WritableSensor):
                found[name] = (sensor, self.sensor_configs[name])
        return found

    async def stop(self) -> None:
        """Stop logic and inputs, bring every output to its safe state, then close the services."""
        if self.keeper is not None:
            await self.supervisor.cancel("recovery")
            self.keeper.close()  # `running: false`: the next start is no crash
        if self.show is not None:
            self.show.stop()
        await self.supervisor.cancel("fades", *[f"sensor:{n}" for n in self.sensors])
        for name, sensor in self.sensors.items():
            if isinstance(sensor, WritableSensor) and not await sensor.go_safe(self.options.safe_timeout):
                log.error("could not confirm the safe state of the outputs of %s", name)
            await sensor.close()
        await self.supervisor.cancel(*[f"device:{n}" for n in self.devices])
        results = await asyncio.gather(*(d.go_safe(self.options.safe_timeout) for d in self.devices.values()))
        self._say_safe([name for name, ok in zip(self.devices, results, strict=True) if not ok])
        if self.analytics is not None:
            await self.supervisor.cancel("analytics")
            await asyncio.to_thread(self.analytics.close)
        await self._close_services()
        await self.supervisor.cancel_all()
        self.control.audit.close()
        log.info("exhibit %s stopped", self.exhibit.id)

    def _say_safe(self, unsafe: list[str]) -> None:
        """One line for the whole stop: every device safe, or which were not and why (grouped by reason)."""
        if not unsafe:
            log.info("all %d devices are in their safe state", len(self.devices))
            return
        by_reason: dict[str, list[str]] = {}
        for name in unsafe:
            reason = self.devices[name].health.reason or "not confirmed in time"
            by_reason.setdefault(reason, []).append(name)
        for reason, names in by_reason.items():
            log.error(
                "设备未确认安全状态 / %d of %d devices never confirmed their safe state (%s): %s",
                len(names),
                len(self.devices),
                reason,
                ", ".join(names),
            )

    async def _close_services(self) -> None:
        for service in reversed(self.services):
            try:
                await service.close(self.options.safe_timeout)
            except Exception:  # one service that fails to close must not keep the others open
                log.exception("service %s did not close cleanly", service.name)


def assemble(
    exhibit: ExhibitBase,
    registry: Registry,
    options: RuntimeOptions | None = None,
    *,
    clock: Clock | None = None,
    resources: Resources | None = None,
) -> Runtime:
    """The exhibit's runtime with every service it has (the embedded broker, the MQTT link, OSCQuery,
    the render process...), ready to :meth:`Runtime.start`. The one way ``run``, ``shot``, ``bench``
    and the tests build a running exhibit."""
    return Runtime(
        exhibit,
        registry,
        resources or Resources(),
        options or RuntimeOptions(),
        clock or MonotonicClock(),
        service_specs=registry.services_for(exhibit),
    )


def _content(section: Any) -> Any:
    """A section of the exhibit as plain data: what a reload compares (never objects' run-time state)."""
    if hasattr(section, "model_dump"):
        return section.model_dump(mode="json")
    if isinstance(section, dict):
        return {key: _content(value) for key, value in section.items()}
    return section
