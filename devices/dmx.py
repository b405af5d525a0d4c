"""DMX512 fixtures driven straight over the network: sACN (ANSI E1.31) or Art-Net.

For venues without an MQTT-to-DMX gateway. Each fixture is a slice of a
512-channel universe; every fixture of one universe (same protocol, universe
number and destination) writes into ONE shared buffer that ONE sender streams,
because a universe is a single stream on the wire (one CID, one sequence).

The sender sends at the DMX refresh rate (44 Hz) while levels change and a
keep-alive frame at least once a second otherwise: E1.31 receivers drop a
source after 2.5 s of silence. Packets are built here (the formats are small
and fixed) and sent on a non-blocking UDP socket from the event loop, so
nothing ever blocks and no thread is needed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import socket
import struct
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple, Protocol, Self

from pydantic import Field, field_validator, model_validator

from engine.authority import Authority
from engine.clock import Clock
from engine.drivers import Device, DriverContext, Fault, Resources, check_fault
from engine.health import ComponentHealth
from engine.model import DeviceConfig, Name, Strict

log = logging.getLogger("devices.dmx")

DMX_SLOTS = 512
REFRESH_HZ = 44.0
"""Full 512-slot DMX512 frames per second: sending faster only floods the network."""
FRAME_INTERVAL = 1.0 / REFRESH_HZ
KEEPALIVE_INTERVAL = 1.0
"""Seconds between frames while nothing changes (E1.31 receivers give up after 2.5 s)."""
SAFE_REPEATS = 3
"""The safe frame goes out this many times: UDP may lose one, and nothing follows it at shutdown."""
HISTORY = 10_000
"""Frames a simulator keeps (about four minutes at 44 Hz), so a long simulated run stays small."""

SACN_PORT = 5568
ARTNET_PORT = 6454
SACN_UNIVERSES = (1, 63999)
ARTNET_UNIVERSES = (0, 32767)
"""Art-Net's 15-bit Port-Address (Net, Sub-Net, Universe), starting at 0."""
SOURCE_NAME = "exhibit-controller"
PROCESS_CID = uuid.uuid4().bytes
"""E1.31 Component IDentifier: one per process, so receivers see one source."""

DmxProtocol = Literal["sacn", "artnet"]


# --- configuration --------------------------------------------------------------------------------------------------


class ChannelSpec(Strict):
    """One property of a fixture: where it sits in the fixture's footprint and how it scales."""

    offset: int = Field(ge=0, le=DMX_SLOTS - 1, description="Channel offset from the fixture's `address` (0-based).")
    fine: bool = Field(False, description="16-bit: coarse byte at `offset`, fine byte at `offset + 1`.")
    range: tuple[float, float] | None = Field(
        None, description="[min, max] in property units, sent as 0..255 (0..65535 if fine); default: raw DMX values."
    )
    safe: float = Field(0.0, description="Value in the fixture's safe state (PANIC, start-up, clean stop).")

    @model_validator(mode="after")
    def _range_and_safe(self) -> ChannelSpec:
        low, high = self.natural_range()
        if low >= high:
            raise ValueError("`range` must be [min, max] with min < max")
        if not low <= self.safe <= high:
            raise ValueError(f"`safe` value {self.safe:g} is outside the range [{low:g}, {high:g}]")
        return self

    @property
    def width(self) -> int:
        return 2 if self.fine else 1

    @property
    def last_offset(self) -> int:
        return self.offset + self.width - 1

    def dmx_max(self) -> int:
        return 0xFFFF if self.fine else 0xFF

    def natural_range(self) -> tuple[float, float]:
        return self.range if self.range is not None else (0.0, float(self.dmx_max()))

    def clamp(self, value: Any) -> float:
        low, high = self.natural_range()
        number = float(value)
        if math.isnan(number):
            raise ValueError("a DMX level cannot be NaN")
        return min(max(number, low), high)

    def encode(self, value: float) -> bytes:
        """Property units to DMX bytes; 16-bit values are big-endian (coarse channel first), as fixtures expect."""
        low, high = self.natural_range()
        level = round((self.clamp(value) - low) / (high - low) * self.dmx_max())
        return level.to_bytes(self.width, "big")

    def decode(self, data: bytes) -> float:
        """DMX bytes back to property units (what a fixture receiving them would show)."""
        low, high = self.natural_range()
        return low + int.from_bytes(data, "big") / self.dmx_max() * (high - low)


def _profile(*names: str) -> dict[str, ChannelSpec]:
    return {name: ChannelSpec.model_validate({"offset": index}) for index, name in enumerate(names)}


PROFILES: dict[str, dict[str, ChannelSpec]] = {
    "dimmer": _profile("level"),
    "rgb": _profile("red", "green", "blue"),
    "rgbw": _profile("red", "green", "blue", "white"),
}


class DmxDeviceConfig(DeviceConfig):
    """A DMX fixture patched at `address` on a universe sent over sACN (E1.31) or Art-Net."""

    kind: Literal["dmx"]
    protocol: DmxProtocol = Field("sacn", description="`sacn` (E1.31, multicast by default) or `artnet`.")
    universe: int = Field(
        ge=0, le=SACN_UNIVERSES[1], description="Universe number: 1..63999 for sACN, 0..32767 for Art-Net."
    )
    address: int = Field(ge=1, le=DMX_SLOTS, description="The fixture's start channel (1..512).")
    destination: str | None = Field(
        None,
        description="IPv4 address to send to (a node, or a multicast group). Default: sACN's multicast group "
        "239.255.<hi>.<lo> for the universe; Art-Net broadcast 255.255.255.255 (unicast to the node is better).",
    )
    port: int | None = Field(None, ge=1, le=65535, description="UDP port; default 5568 (sACN) or 6454 (Art-Net).")
    priority: int | None = Field(None, ge=0, le=200, description="sACN source priority (default 100).")
    profile: Literal["dimmer", "rgb", "rgbw"] | None = Field(
        None, description="Standard channel map: dimmer (`level`), rgb (`red` `green` `blue`), rgbw (+ `white`)."
    )
    channels: dict[Name, ChannelSpec] = Field(
        default_factory=dict, description="The fixture's channel map; adds to or overrides the `profile`'s."
    )

    @field_validator("destination")
    @classmethod
    def _ipv4(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.IPv4Address(value)
            except ValueError:
                raise ValueError(f"`destination` must be an IPv4 address such as 192.168.1.50, not `{value}`") from None
        return value

    @model_validator(mode="after")
    def _fits(self) -> DmxDeviceConfig:
        low, high = SACN_UNIVERSES if self.protocol == "sacn" else ARTNET_UNIVERSES
        if not low <= self.universe <= high:
            raise ValueError(f"{self.protocol} universes are {low}..{high}, not {self.universe}")
        if self.priority is not None and self.protocol != "sacn":
            raise ValueError("`priority` only applies to sACN")
        channels = self.channel_map()
        if not channels:
            raise ValueError("a DMX fixture needs a `profile` or `channels`")
        _check_overlaps(channels)
        last_name, last = max(channels.items(), key=lambda item: item[1].last_offset)
        if self.address + last.last_offset > DMX_SLOTS:
            raise ValueError(
                f"the fixture does not fit in the universe: `{last_name}` lands on channel "
                f"{self.address + last.last_offset} (address {self.address} + offset {last.last_offset}), "
                f"past channel {DMX_SLOTS}; patch it at address {DMX_SLOTS - last.last_offset} or lower"
            )
        return self

    def channel_map(self) -> dict[str, ChannelSpec]:
        """The profile's channels, then the explicit ones (which win)."""
        return {**(PROFILES[self.profile] if self.profile else {}), **self.channels}

    def footprint(self) -> range:
        """The universe channels (1-based) this fixture occupies."""
        last = max(spec.last_offset for spec in self.channel_map().values())
        return range(self.address, self.address + last + 1)

    def effective_priority(self) -> int:
        return 100 if self.priority is None else self.priority

    def target(self) -> tuple[str, int]:
        """Where the universe's packets go."""
        if self.protocol == "sacn":
            return self.destination or sacn_multicast_group(self.universe), self.port or SACN_PORT
        return self.destination or "255.255.255.255", self.port or ARTNET_PORT

    def settable_properties(self) -> list[str]:
        return list(self.channel_map())

    def property_range(self, name: str) -> tuple[float, float] | None:
        return self.channel_map()[name].natural_range()

    def safe_state(self) -> dict[str, Any]:
        return {name: spec.safe for name, spec in self.channel_map().items()}

    def max_rate(self) -> float:
        return REFRESH_HZ


def _check_overlaps(channels: Mapping[str, ChannelSpec]) -> None:
    """Two properties on one channel would fight; say which."""
    owners: dict[int, str] = {}
    for name, spec in channels.items():
        for offset in range(spec.offset, spec.last_offset + 1):
            if offset in owners:
                raise ValueError(f"`{name}` and `{owners[offset]}` both use channel offset {offset}")
            owners[offset] = name


def sacn_multicast_group(universe: int) -> str:
    """E1.31 section 9.3.1: 239.255.<universe high byte>.<universe low byte>."""
    return f"239.255.{universe >> 8}.{universe & 0xFF}"


# --- packets --------------------------------------------------------------------------------------------------------

ACN_PACKET_IDENTIFIER = b"ASC-E1.17\x00\x00\x00"
VECTOR_ROOT_E131_DATA = 0x00000004
VECTOR_E131_DATA_PACKET = 0x00000002
VECTOR_DMP_SET_PROPERTY = 0x02
DMP_ADDRESS_AND_DATA_TYPE = 0xA1
FLAGS = 0x7000
"""The top nibble of every PDU's flags-and-length field."""
OPTION_STREAM_TERMINATED = 0x40
ARTNET_ID = b"Art-Net\x00"
ARTNET_OP_DMX = 0x5000
ARTNET_PROTOCOL_VERSION = 14


def sacn_packet(
    universe: int,
    data: bytes,
    sequence: int,
    priority: int = 100,
    cid: bytes = PROCESS_CID,
    source_name: str = SOURCE_NAME,
    options: int = 0,
) -> bytes:
    """An E1.31 data packet (E1.31-2018 section 4.1, table 4-1): root, framing and DMP layers, start code 0."""
    values = b"\x00" + data  # DMX start code 0 (dimmer levels), then the slots
    dmp = struct.pack(
        "!HBBHHH", FLAGS | (10 + len(values)), VECTOR_DMP_SET_PROPERTY, DMP_ADDRESS_AND_DATA_TYPE, 0, 1, len(values)
    )
    name = source_name.encode()[:63].ljust(64, b"\x00")  # null-terminated UTF-8
    framing_fields = struct.pack("!BHBBH", priority, 0, sequence & 0xFF, options, universe)
    framing_length = 6 + len(name) + len(framing_fields) + len(dmp) + len(values)
    framing = struct.pack("!HI", FLAGS | framing_length, VECTOR_E131_DATA_PACKET) + name + framing_fields
    root_length = 22 + framing_length
    root = struct.pack("!HH12sHI16s", 0x0010, 0x0000, ACN_PACKET_IDENTIFIER, FLAGS | root_length, 4, cid)
    return root + framing + dmp + values


def artnet_packet(universe: int, data: bytes, sequence: int, physical: int = 0) -> bytes:
    """An ArtDmx packet (Art-Net 4): OpCode little-endian, everything else big-endian; length must be even."""
    if len(data) % 2:
        data += b"\x00"
    return (
        ARTNET_ID
        + struct.pack("<H", ARTNET_OP_DMX)
        + struct.pack("!HBBBBH", ARTNET_PROTOCOL_VERSION, sequence, physical, universe & 0xFF, universe >> 8, len(data))
        + data
    )


# --- sending --------------------------------------------------------------------------------------------------------


class DmxSink(Protocol):
    """Where a universe's packets go: the network, or a simulator's record."""

    def send(self, packet: bytes) -> bool: ...

    def close(self) -> None: ...


class UdpSink:
    """A non-blocking UDP socket: ``sendto`` never waits; a full buffer drops that frame, and the next carries
    the same levels anyway. Failures are logged when they start and when they stop, not once per frame."""

    def __init__(self, address: tuple[str, int], may_send: Callable[[], bool] | None = None) -> None:
        self.address = address
        self.may_send = may_send
        """False while another node of the show network drives the devices: frames are held back."""
        self.failing: str | None = None
        self._socket: socket.socket | None = None

    def _open(self) -> socket.socket:
        if self._socket is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)  # Art-Net's default is a broadcast
            self._socket = sock
        return self._socket

    def send(self, packet: bytes) -> bool:
        if self.may_send is not None and not self.may_send():
            return True  # held back, not lost: this node tracks the one that drives
        try:
            self._open().sendto(packet, self.address)
        except OSError as exc:
            self._report(exc)
            return False
        if self.failing is not None:
            log.info("DMX to %s:%d flows again", *self.address)
            self.failing = None
        return True

    def _report(self, exc: OSError) -> None:
        reason = exc.strerror or type(exc).__name__
        if self.failing != reason:
            log.warning("DMX to %s:%d not sent: %s", *self.address, reason)
            self.failing = reason

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class DmxFrame(NamedTuple):
    at: float
    """The clock's time when it was sent."""
    data: bytes
    """The 512 slots."""


class RecordingSink:
    """A simulator's network: keeps the packets instead of sending them."""

    def __init__(self) -> None:
        self.packets: deque[bytes] = deque(maxlen=HISTORY)

    def send(self, packet: bytes) -> bool:
        self.packets.append(packet)
        return True

    def close(self) -> None:
        self.packets.clear()


class UniverseKey(NamedTuple):
    protocol: DmxProtocol
    universe: int
    destination: tuple[str, int]


class DmxUniverse:
    """One universe's 512-slot buffer and its single sender, shared by every fixture patched on it."""

    def __init__(self, key: UniverseKey, sink: DmxSink, clock: Clock, priority: int = 100) -> None:
        self.key = key
        self.sink = sink
        self.clock = clock
        self.priority = priority
        self.buffer = bytearray(DMX_SLOTS)
        self.frames_sent = 0
        self._sequence = 0
        self._last_sent = -math.inf
        self._changed = asyncio.Event()
        self._users = 0
        self._sender: asyncio.Task[None] | None = None
        self._claims: dict[str, range] = {}
        self._listeners: list[Callable[[DmxFrame], None]] = []
        self._healths: list[ComponentHealth] = []
        self.failing: str | None = "nothing sent yet"
        """Why the last frame did not go out (None while frames flow): every fixture on it shares it."""

    def claim(self, owner: str, channels: range) -> None:
        """Note a fixture's footprint; two fixtures on the same channels is a patching mistake worth a warning."""
        for other, taken in self._claims.items():
            if other != owner and set(channels) & set(taken):
                key = self.key
                log.warning(
                    "DMX fixtures %s and %s overlap on %s universe %d", owner, other, key.protocol, key.universe
                )
        self._claims[owner] = channels

    def share_health(self, health: ComponentHealth) -> None:
        """A fixture's health follows its universe's: ok while frames go out, offline while the network refuses them."""
        self._healths.append(health)

    def _flowing(self, failing: str | None) -> None:
        if failing == self.failing:
            return
        self.failing = failing
        host, port = self.key.destination
        for health in self._healths:
            if failing is None:
                health.set("ok")
            else:
                health.set("offline", f"{self.key.protocol} universe {self.key.universe} to {host}:{port}: {failing}")

    def on_frame(self, listener: Callable[[DmxFrame], None]) -> None:
        """Call ``listener`` with every frame sent (the simulator records them)."""
        self._listeners.append(listener)

    def write(self, channel: int, data: bytes) -> None:
        """Put bytes at 1-based ``channel``; the sender notices the change. Never blocks."""
        start = channel - 1
        if self.buffer[start : start + len(data)] != data:
            self.buffer[start : start + len(data)] = data
            self._changed.set()

    def packet(self) -> bytes:
        """The next packet of this universe's stream, with its sequence number."""
        data = bytes(self.buffer)
        if self.key.protocol == "sacn":
            self._sequence = (self._sequence + 1) & 0xFF
            return sacn_packet(self.key.universe, data, self._sequence, self.priority)
        self._sequence = self._sequence % 255 + 1  # Art-Net: 1..255; 0 would disable re-ordering
        return artnet_packet(self.key.universe, data, self._sequence)

    def send_first(self) -> None:
        """Send the buffer at once if nothing went out yet (at start it holds the fixtures' safe states): a restart
        after a crash shows the gear safe before the show lights it again. Once per universe, never blocks."""
        if self._last_sent == -math.inf:
            self._send()

    async def send_now(self) -> bool:
        """Send the buffer as soon as the refresh rate allows; True if the network took it."""
        while (gap := self._last_sent + FRAME_INTERVAL - self.clock.now()) > 0:
            await self.clock.sleep(gap)
        return self._send()

    def _send(self) -> bool:
        self._changed.clear()
        self._last_sent = self.clock.now()
        if not self.sink.send(self.packet()):
            self._flowing(getattr(self.sink, "failing", None) or "not sent")
            return False
        self._flowing(None)
        self.frames_sent += 1
        frame = DmxFrame(self._last_sent, bytes(self.buffer))
        for listener in self._listeners:
            listener(frame)
        return True

    async def serve(self) -> None:
        """Keep the universe streaming while at least one fixture's ``run`` is in here."""
        self._users += 1
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._stream(), name=f"dmx:{self.key.protocol}:{self.key.universe}")
        sender = self._sender
        try:
            await asyncio.shield(sender)
        finally:
            self._users -= 1
            if self._users == 0:
                sender.cancel()

    async def _stream(self) -> None:
        while True:
            await self._wait_for_change(self._last_sent + KEEPALIVE_INTERVAL - self.clock.now())
            await self.send_now()

    async def _wait_for_change(self, timeout: float) -> None:
        """Until a fixture changes the buffer or ``timeout`` seconds of the clock pass (the keep-alive)."""
        if self._changed.is_set() or timeout <= 0:
            return
        waiters = [asyncio.ensure_future(self._changed.wait()), asyncio.ensure_future(self.clock.sleep(timeout))]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()


class DmxUniverses:
    """The universes of this process, by (protocol, universe, destination): kept in the drivers' resources."""

    def __init__(self, authority: Authority | None = None) -> None:
        self.universes: dict[UniverseKey, DmxUniverse] = {}
        self.authority = authority
        """In a show network with a backup: who drives the devices (only the driving node's frames go out)."""

    @classmethod
    def shared(cls, resources: Resources) -> Self:
        """The registry in ``resources``, made on first use."""
        try:
            return resources.get(cls)
        except LookupError:
            try:
                authority: Authority | None = resources.get(Authority)
            except LookupError:
                authority = None
            registry = cls(authority)
            resources.put(registry)
            return registry

    def universe(self, config: DmxDeviceConfig, clock: Clock) -> DmxUniverse:
        key = UniverseKey(config.protocol, config.universe, config.target())
        found = self.universes.get(key)
        if found is None:
            found = DmxUniverse(key, self.make_sink(key), clock, config.effective_priority())
            self.universes[key] = found
        elif config.protocol == "sacn" and found.priority != config.effective_priority():
            log.warning(
                "sACN universe %d already streams at priority %d; priority %d of another fixture is ignored",
                config.universe,
                found.priority,
                config.effective_priority(),
            )
        return found

    def make_sink(self, key: UniverseKey) -> DmxSink:
        authority = self.authority
        return UdpSink(key.destination, (lambda: authority.driving) if authority is not None else None)

    def close(self) -> None:
        for universe in self.universes.values():
            universe.sink.close()
        self.universes.clear()


class SimulatedUniverses(DmxUniverses):
    """Universes whose packets are recorded, not sent (a separate resource, so simulators never hit the network)."""

    def make_sink(self, key: UniverseKey) -> DmxSink:
        return RecordingSink()


# --- drivers --------------------------------------------------------------------------------------------------------


class DmxDevice(Device):
    """A fixture: writes its properties into its universe's shared buffer, which the universe streams."""

    config: DmxDeviceConfig
    universes: type[DmxUniverses] = DmxUniverses

    def __init__(self, name: str, config: DmxDeviceConfig, context: DriverContext) -> None:
        super().__init__(name, config, context)
        self.channels = config.channel_map()
        self.universe = self.universes.shared(context.resources).universe(config, context.clock)
        self.universe.claim(name, config.footprint())
        self.universe.share_health(self.health)
        self.values: dict[str, float] = {}
        """The last value asked of each property, clamped into its range."""
        self._write(config.safe_state())  # start-up: the safe state goes first

    def set(self, values: Mapping[str, Any]) -> None:
        self._write(values)

    def before_show(self) -> None:
        self.universe.send_first()  # the safe frame, before the show's first values overwrite the buffer

    def _write(self, values: Mapping[str, Any]) -> None:
        for prop, value in values.items():
            spec = self.channels[prop]
            number = spec.clamp(value)
            self.values[prop] = number
            self.universe.write(self.config.address + spec.offset, spec.encode(number))

    async def run(self) -> None:
        await self.universe.serve()

    async def go_safe(self, timeout: float) -> bool:
        self._write(self.config.safe_state())
        try:
            async with asyncio.timeout(timeout):
                sent = [await self.universe.send_now() for _ in range(SAFE_REPEATS)]
        except TimeoutError:
            log.error("device %s: safe state not sent within %g s", self.name, timeout)
            return False
        if not all(sent):
            log.error("device %s: the network refused the safe state", self.name)
        return all(sent)


class SimulatedDmx(DmxDevice):
    """A DMX fixture without a network: its universe records frames instead of sending them.

    ``frames`` are the frames the fixture received; ``inject("disconnect")`` unplugs it
    (frames still go out, it misses them, and ``go_safe`` reports failure);
    ``inject("clear")`` plugs it back in. It plays no other fault.
    """

    universes = SimulatedUniverses

    def __init__(self, name: str, config: DmxDeviceConfig, context: DriverContext) -> None:
        super().__init__(name, config, context)
        self.fault: Fault = "clear"
        self.frames: deque[DmxFrame] = deque(maxlen=HISTORY)
        self.universe.on_frame(self._receive)

    @property
    def packets(self) -> deque[bytes]:
        """Every packet its universe sent (sACN or Art-Net bytes), shared with the universe's other fixtures."""
        sink = self.universe.sink
        if not isinstance(sink, RecordingSink):
            raise TypeError("a simulated fixture's universe must record its packets")
        return sink.packets

    def inject(self, fault: Fault) -> None:
        check_fault(self, fault, ("disconnect", "clear"))
        self.fault = fault
        self.health.set("offline", "simulated disconnect") if fault == "disconnect" else self.health.set("ok")

    def _receive(self, frame: DmxFrame) -> None:
        if self.fault != "disconnect":
            self.frames.append(frame)

    def levels(self) -> bytes:
        """The fixture's own channels in the last frame it received (all zero before the first)."""
        span = self.config.footprint()
        if not self.frames:
            return bytes(len(span))
        return self.frames[-1].data[span.start - 1 : span.stop - 1]

    @property
    def state(self) -> dict[str, float]:
        """Property values as the fixture shows them, decoded from the last frame it received."""
        levels = self.levels()  # the footprint starts at the fixture's address, so offsets index it
        return {
            name: spec.decode(levels[spec.offset : spec.offset + spec.width]) for name, spec in self.channels.items()
        }

    async def go_safe(self, timeout: float) -> bool:
        sent = await super().go_safe(timeout)
        return sent and self.fault != "disconnect"
