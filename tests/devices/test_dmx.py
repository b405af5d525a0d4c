"""DMX over sACN (E1.31) and Art-Net: packet bytes against the specs' layouts, OLA's olad as a real
receiver, a plain socket as a second one, the shared universe, the refresh rate and the simulator."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from devices.dmx import (
    PROCESS_CID,
    DmxDevice,
    DmxDeviceConfig,
    DmxUniverses,
    RecordingSink,
    SimulatedDmx,
    SimulatedUniverses,
    artnet_packet,
    sacn_packet,
)
from engine.clock import MonotonicClock, VirtualClock
from engine.drivers import DriverContext, Resources
from engine.signals import SignalStore
from tests.conftest import require_tool
from tests.support.net import free_port, wait_for_port

CID = bytes(range(0x10, 0x20))


def dmx(**fields: Any) -> DmxDeviceConfig:
    return DmxDeviceConfig.model_validate({"kind": "dmx", "universe": 1, "address": 1, **fields})


def context(resources: Resources, clock: Any = None) -> DriverContext:
    return DriverContext("demo", SignalStore(), clock or MonotonicClock(), resources)


@pytest.fixture
def resources() -> Iterator[Resources]:
    shared = Resources()
    yield shared
    for kind in (DmxUniverses, SimulatedUniverses):
        try:
            shared.get(kind).close()
        except LookupError:
            continue


# --- configuration --------------------------------------------------------------------------------------------------


def test_a_profile_fills_a_standard_channel_map_with_safe_zero():
    config = dmx(profile="rgbw", address=10)
    assert config.settable_properties() == ["red", "green", "blue", "white"]
    assert [config.channel_map()[p].offset for p in config.settable_properties()] == [0, 1, 2, 3]
    assert config.safe_state() == {"red": 0, "green": 0, "blue": 0, "white": 0}
    assert config.property_range("red") == (0.0, 255.0)
    assert config.max_rate() == 44
    assert config.footprint() == range(10, 14)


def test_explicit_channels_add_to_and_override_the_profile():
    config = dmx(
        profile="dimmer",
        channels={
            "level": {"offset": 0, "fine": True, "range": [0, 1], "safe": 0},
            "strobe": {"offset": 2, "range": [0, 20], "safe": 0},
        },
    )
    assert config.settable_properties() == ["level", "strobe"]
    assert config.property_range("level") == (0.0, 1.0)
    assert config.property_range("strobe") == (0.0, 20.0)
    assert config.footprint() == range(1, 4)


def test_scaling_into_8_and_16_bit_levels():
    config = dmx(
        channels={"level": {"offset": 0, "fine": True, "range": [0, 1]}, "pan": {"offset": 2, "range": [-90, 90]}}
    )
    level, pan = config.channel_map()["level"], config.channel_map()["pan"]
    assert level.encode(1.0) == b"\xff\xff"
    assert level.encode(0.5) == b"\x80\x00"  # 32767.5 rounds to even: 0x8000, coarse byte first
    assert level.encode(7) == b"\xff\xff"  # clamped
    assert pan.encode(-90) == b"\x00" and pan.encode(0) == b"\x80" and pan.encode(90) == b"\xff"
    assert pan.decode(b"\xff") == 90


def test_defaults_target_the_sacn_multicast_group_or_art_net_broadcast():
    assert dmx(profile="rgb", universe=1).target() == ("239.255.0.1", 5568)
    assert dmx(profile="rgb", universe=0x1234).target() == ("239.255.18.52", 5568)
    assert dmx(profile="rgb", destination="10.0.0.7").target() == ("10.0.0.7", 5568)
    assert dmx(profile="rgb", protocol="artnet", universe=0).target() == ("255.255.255.255", 6454)
    assert dmx(profile="rgb", priority=150).effective_priority() == 150
    assert dmx(profile="rgb").effective_priority() == 100


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"profile": "rgbw", "address": 510},
            "`white` lands on channel 513 (address 510 + offset 3), past channel 512",
        ),
        ({"channels": {"level": {"offset": 0, "fine": True}}, "address": 512}, "lands on channel 513"),
        ({"profile": "rgb", "universe": 0}, "sacn universes are 1..63999, not 0"),
        ({"profile": "rgb", "universe": 64000}, "less than or equal to 63999"),
        ({"profile": "rgb", "protocol": "artnet", "universe": 32768}, "artnet universes are 0..32767"),
        ({"profile": "rgb", "protocol": "artnet", "priority": 100}, "`priority` only applies to sACN"),
        ({"profile": "rgb", "address": 0}, "greater than or equal to 1"),
        ({}, "needs a `profile` or `channels`"),
        ({"profile": "rgb", "channels": {"dim": {"offset": 2}}}, "`dim` and `blue` both use channel offset 2"),
        ({"channels": {"a": {"offset": 0, "fine": True}, "b": {"offset": 1}}}, "`b` and `a` both use channel offset 1"),
        ({"channels": {"level": {"offset": 0, "range": [0, 1], "safe": 2}}}, "`safe` value 2 is outside"),
        ({"channels": {"level": {"offset": 0, "range": [1, 0]}}}, "min < max"),
        ({"profile": "rgb", "destination": "lights.local"}, "must be an IPv4 address"),
        ({"profile": "rgb", "channels": {"Bad": {"offset": 3}}}, "String should match pattern"),
    ],
)
def test_invalid_configurations_say_why(fields, message):
    with pytest.raises(ValidationError) as caught:
        dmx(**fields)
    assert message in str(caught.value)


# --- packets --------------------------------------------------------------------------------------------------------


def test_sacn_packet_golden_bytes():
    data = bytes([255, 128, 0]) + bytes(509)
    packet = sacn_packet(1, data, sequence=7, priority=100, cid=CID)
    header = bytes.fromhex(
        # Root layer (E1.31 table 4-1): preamble size, post-amble size, ACN packet identifier,
        # flags+length (0x7000 | 638-16), VECTOR_ROOT_E131_DATA, CID.
        "0010"
        "0000"
        "4153432d45312e3137000000"
        "726e"
        "00000004"
        "101112131415161718191a1b1c1d1e1f"
        # Framing layer: flags+length (0x7000 | 638-38), VECTOR_E131_DATA_PACKET, source name (64 bytes),
        # priority 100, synchronization address 0, sequence 7, options 0, universe 1.
        "7258"
        "00000002" + b"exhibit-controller".hex().ljust(128, "0") + "64"
        "0000"
        "07"
        "00"
        "0001"
        # DMP layer: flags+length (0x7000 | 638-115), VECTOR_DMP_SET_PROPERTY, address & data type,
        # first property address 0, address increment 1, property value count 513, START code 0.
        "720b"
        "02"
        "a1"
        "0000"
        "0001"
        "0201"
        "00"
    )
    assert len(packet) == 638
    assert packet == header + data
    # The same fields by offset, as a receiver reads them.
    assert packet[4:16] == b"ASC-E1.17\x00\x00\x00"
    assert packet[22:38] == CID
    assert packet[44:62] == b"exhibit-controller" and packet[62:108] == bytes(46)
    assert (packet[108], packet[111], struct.unpack("!H", packet[113:115])[0]) == (100, 7, 1)
    assert struct.unpack("!H", packet[123:125])[0] == 513 and packet[125] == 0
    assert packet[126:129] == bytes([255, 128, 0])


def test_sacn_packets_use_the_process_cid_and_wrap_the_sequence():
    packet = sacn_packet(63999, bytes(512), sequence=256)
    assert packet[22:38] == PROCESS_CID
    assert packet[111] == 0
    assert packet[113:115] == b"\xf9\xff"


def test_artdmx_packet_golden_bytes():
    data = bytes([1, 2, 3]) + bytes(509)
    packet = artnet_packet(0x0123, data, sequence=7)
    # ID, OpCode 0x5000 little-endian, ProtVer 14 (hi, lo), Sequence, Physical, SubUni, Net, Length (hi, lo).
    assert packet == bytes.fromhex("4172742d4e6574000050000e070023010200") + data
    assert artnet_packet(5, b"\x09", sequence=1)[-4:] == bytes.fromhex("00020900")  # length is made even


# --- a real receiver: OLA's olad ------------------------------------------------------------------------------------

OLA_PLUGINS = [
    "artnet",
    "dummy",
    "espnet",
    "ftdidmx",
    "gpio",
    "karate",
    "kinet",
    "milinst",
    "opendmx",
    "openpixelcontrol",
    "osc",
    "pathport",
    "renard",
    "sandnet",
    "shownet",
    "spi",
    "stageprofi",
    "uartdmx",
    "usbdmx",
    "usbserial",
]
"""The plugins of Debian's ola 0.10 other than E1.31: switched off so olad touches nothing else."""


QUIET = ["--no-register-with-dns-sd", "--log-level", "3"]
"""No DNS-SD advertising; log level 3 (info) shows "Added new E1.31 source", which the test counts."""


@dataclass
class Olad:
    http_port: int
    process: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=5) as reply:
            return json.load(reply)

    def post(self, path: str, form: dict[str, str]) -> Any:
        body = "&".join(f"{key}={value}" for key, value in form.items()).encode()
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", body, timeout=5) as reply:
            return json.load(reply)

    def patch_e131_input(self, universe: int) -> None:
        """Patch olad's E1.31 input port to an OLA universe of the same number (it listens for that universe)."""
        ports = [p["id"] for p in self.get("/json/get_ports") if not p["is_output"] and "E1.31" in p["device"]]
        assert ports, f"olad has no E1.31 input port: {self.get('/json/get_ports')}"
        reply = self.post("/new_universe", {"id": str(universe), "name": "exhibit", "add_ports": ports[0]})
        assert reply["ok"], reply

    def levels(self, universe: int) -> list[int]:
        return list(self.get(f"/get_dmx?u={universe}")["dmx"])


def write_ola_config(directory: Path) -> None:
    for plugin in OLA_PLUGINS:
        (directory / f"ola-{plugin}.conf").write_text("enabled = false\n")
    (directory / "ola-e131.conf").write_text("enabled = true\nip = 127.0.0.1\ninput_ports = 1\noutput_ports = 0\n")


@pytest.fixture
def olad() -> Iterator[Olad]:
    command = [require_tool("olad")]
    with tempfile.TemporaryDirectory(prefix="olad-") as folder:
        config = Path(folder)
        write_ola_config(config)
        if os.geteuid() == 0:
            # olad refuses to run as root ("Attempting to run as root, aborting"): run it as nobody.
            command = [require_tool("setpriv"), "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]
            for path in [config, *config.iterdir()]:
                path.chmod(0o777 if path.is_dir() else 0o666)
        http_port, rpc_port = free_port(), free_port()
        log = config / "olad.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    *command,
                    "--config-dir",
                    str(config),
                    "--http-port",
                    str(http_port),
                    "--rpc-port",
                    str(rpc_port),
                    *QUIET,
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(http_port)
            yield Olad(http_port, process, log)
        except TimeoutError as exc:
            raise AssertionError(f"olad did not start: {log.read_text()}") from exc
        finally:
            process.terminate()
            process.wait(10)


async def test_olad_receives_the_levels_of_patched_fixtures(olad, resources, running):
    olad.patch_e131_input(1)
    ctx = context(resources)
    rgb = DmxDevice("wash", dmx(profile="rgb", address=10, destination="127.0.0.1"), ctx)
    fine = {"level": {"offset": 0, "fine": True, "range": [0, 1]}}
    dimmer = DmxDevice("spot", dmx(channels=fine, address=100, destination="127.0.0.1"), ctx)
    running += [asyncio.create_task(rgb.run()), asyncio.create_task(dimmer.run())]
    rgb.set({"red": 255, "green": 128})
    dimmer.set({"level": 0.75})
    expected = {9: 255, 10: 128, 11: 0, 99: 0xBF, 100: 0xFF}  # channel n is index n - 1
    deadline = time.monotonic() + 10
    while True:
        levels = await asyncio.to_thread(olad.levels, 1)
        if len(levels) == 512 and all(levels[i] == v for i, v in expected.items()):
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"olad shows {levels[:16]}...{levels[96:104]}; log: {olad.log.read_text()[-2000:]}")
        await asyncio.sleep(0.05)
    assert sum(levels) == 255 + 128 + 0xBF + 0xFF  # nothing else lit
    # Both fixtures are one source to olad: one stream from this process.
    assert olad.log.read_text().count("Added new E1.31 source") == 1
    # The safe state reaches it too.
    assert await rgb.go_safe(2.0)
    await asyncio.sleep(0.2)
    assert (await asyncio.to_thread(olad.levels, 1))[9:12] == [0, 0, 0]


# --- a plain socket as a second receiver ----------------------------------------------------------------------------


class Receiver:
    """A UDP socket on loopback that collects sACN packets with their arrival times."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.setblocking(False)
        self.port = self.socket.getsockname()[1]
        self.packets: list[tuple[float, bytes]] = []

    async def collect(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                packet = await asyncio.wait_for(loop.sock_recv(self.socket, 1024), left)
            except TimeoutError:
                return
            self.packets.append((time.monotonic(), packet))

    def drain(self) -> None:
        """Forget what arrived so far, queued in the socket included."""
        self.packets.clear()
        while True:
            try:
                self.socket.recv(1024)
            except BlockingIOError:
                return


def parse_sacn(packet: bytes) -> dict[str, Any]:
    assert packet[4:16] == b"ASC-E1.17\x00\x00\x00"
    count = struct.unpack("!H", packet[123:125])[0]
    return {
        "cid": packet[22:38],
        "source": packet[44:108].rstrip(b"\x00").decode(),
        "priority": packet[108],
        "sequence": packet[111],
        "universe": struct.unpack("!H", packet[113:115])[0],
        "start_code": packet[125],
        "slots": packet[126 : 125 + count],
    }


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.socket.close()


async def test_two_fixtures_on_one_universe_share_one_stream(receiver, resources, running):
    ctx = context(resources)
    a = DmxDevice("a", dmx(profile="rgb", address=1, destination="127.0.0.1", port=receiver.port, priority=120), ctx)
    b = DmxDevice("b", dmx(profile="dimmer", address=500, destination="127.0.0.1", port=receiver.port), ctx)
    assert a.universe is b.universe
    running += [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
    a.set({"red": 10, "blue": 30})
    b.set({"level": 200})
    await receiver.collect(0.3)
    frames = [parse_sacn(packet) for _, packet in receiver.packets]
    last = frames[-1]
    assert (last["universe"], last["priority"], last["source"], last["start_code"]) == (1, 120, "exhibit-controller", 0)
    assert last["slots"][:3] == bytes([10, 0, 30]) and last["slots"][499] == 200 and len(last["slots"]) == 512
    assert {f["cid"] for f in frames} == {PROCESS_CID}
    sequences = [f["sequence"] for f in frames]
    assert sequences == [(sequences[0] + i) % 256 for i in range(len(sequences))]  # one counter: one stream


async def test_a_different_destination_is_a_different_stream(resources):
    ctx = context(resources)
    a = DmxDevice("a", dmx(profile="rgb", destination="127.0.0.1"), ctx)
    b = DmxDevice("b", dmx(profile="rgb", destination="127.0.0.2"), ctx)
    c = DmxDevice("c", dmx(profile="rgb", universe=2, destination="127.0.0.1"), ctx)
    assert len({id(a.universe), id(b.universe), id(c.universe)}) == 3
    assert resources.get(DmxUniverses) is DmxUniverses.shared(resources)


async def test_real_time_rate_stays_under_44_hz_and_the_last_value_arrives(receiver, resources, running):
    device = DmxDevice("wash", dmx(profile="dimmer", destination="127.0.0.1", port=receiver.port), context(resources))
    running.append(asyncio.create_task(device.run()))
    collecting = asyncio.create_task(receiver.collect(1.5))
    for step in range(500):  # 500 changes a second for one second
        device.set({"level": step % 256})
        await asyncio.sleep(0.002)
    await collecting
    times = [at for at, _ in receiver.packets]
    busiest = max(sum(1 for u in times if t <= u < t + 1.0) for t in times)
    assert 20 <= busiest <= 44, busiest
    assert parse_sacn(receiver.packets[-1][1])["slots"][0] == 499 % 256


async def test_go_safe_sends_after_the_stream_stopped(receiver, resources, running):
    device = DmxDevice("wash", dmx(profile="rgb", destination="127.0.0.1", port=receiver.port), context(resources))
    task = asyncio.create_task(device.run())
    device.set({"red": 255})
    await asyncio.sleep(0.1)
    task.cancel()  # the runtime cancels devices, then asks for the safe state
    await asyncio.gather(task, return_exceptions=True)
    receiver.drain()
    assert await device.go_safe(2.0)
    await receiver.collect(0.2)
    assert len(receiver.packets) == 3
    assert all(parse_sacn(packet)["slots"][:3] == bytes(3) for _, packet in receiver.packets)


async def test_art_net_stream_over_udp(resources, running):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(5)
        config = dmx(profile="rgb", protocol="artnet", universe=0x0123, address=4, destination="127.0.0.1")
        device = DmxDevice("wash", config.model_copy(update={"port": sink.getsockname()[1]}), context(resources))
        device.set({"green": 77})
        running.append(asyncio.create_task(device.run()))
        packet = await asyncio.to_thread(sink.recv, 1024)
    assert packet[:8] == b"Art-Net\x00" and packet[8:10] == b"\x00\x50"
    assert (packet[12], packet[14], packet[15]) == (1, 0x23, 0x01)  # first sequence, SubUni, Net
    assert packet[18 + 3 : 18 + 6] == bytes([0, 77, 0])


# --- simulator, rate and keep-alive on virtual time ----------------------------------------------------------------


def simulated(resources: Resources, clock: VirtualClock, name: str = "wash", **fields: Any) -> SimulatedDmx:
    return SimulatedDmx(name, dmx(**fields), context(resources, clock))


async def test_changes_faster_than_44_hz_are_coalesced_and_idle_keeps_alive(resources, running):
    clock = VirtualClock()
    device = simulated(resources, clock, profile="dimmer")
    running.append(asyncio.create_task(device.run()))
    for step in range(2000):  # two seconds of changes at 1 kHz
        device.set({"level": step % 256})
        await clock.advance(0.001)
    await clock.advance(0.05)
    times = [frame.at for frame in device.frames]
    # Frames exactly 1/44 s apart: the 45th lands on t + 1 s, outside [t, t + 1) but for float rounding.
    assert max(sum(1 for u in times if t <= u < t + 1.0 - 1e-9) for t in times) <= 44
    assert min(later - earlier for earlier, later in itertools.pairwise(times)) >= 1 / 44 - 1e-9
    assert len(times) >= 85  # and it does keep up at the DMX rate
    assert device.levels() == bytes([1999 % 256])  # the last value is never lost to coalescing
    idle_from = len(device.frames)
    await clock.advance(3.05)
    keepalives = [frame.at for frame in list(device.frames)[idle_from - 1 :]]
    assert len(keepalives) == 4
    assert all(0.9 <= later - earlier <= 1.0 + 1e-6 for earlier, later in itertools.pairwise(keepalives))


async def test_simulated_fixtures_share_the_recorded_universe(resources, running):
    clock = VirtualClock()
    a = simulated(resources, clock, "a", profile="rgb", address=1)
    b = simulated(resources, clock, "b", channels={"level": {"offset": 0, "range": [0, 1], "safe": 0}}, address=20)
    assert a.universe is b.universe and a.packets is b.packets
    assert isinstance(a.universe.sink, RecordingSink)  # nothing goes out
    running += [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
    a.set({"red": 100, "green": 300})
    b.set({"level": 0.5})
    await clock.advance(0.1)
    assert a.levels() == bytes([100, 255, 0]) and b.levels() == bytes([128])
    assert a.state == {"red": 100, "green": 255, "blue": 0} and b.state["level"] == pytest.approx(0.5, abs=0.002)
    frame = parse_sacn(a.packets[-1])
    assert frame["slots"][:3] == bytes([100, 255, 0]) and frame["slots"][19] == 128


async def test_simulator_faults(resources, running):
    clock = VirtualClock()
    device = simulated(resources, clock, profile="rgb")
    running.append(asyncio.create_task(device.run()))
    await clock.advance(0.1)
    device.inject("disconnect")
    device.set({"blue": 40})
    await clock.advance(0.5)
    assert device.levels() == bytes(3)  # unplugged: it missed the change
    assert device.universe.buffer[2] == 40  # though the universe carries it
    assert not await device.go_safe(1.0)
    device.inject("clear")
    device.set({"blue": 41})
    await clock.advance(0.1)
    assert device.levels() == bytes([0, 0, 41])
    going = asyncio.create_task(device.go_safe(1.0))
    await clock.advance(0.2)
    assert await going
    assert device.levels() == bytes(3)


async def test_unknown_property_and_bad_values_are_refused(resources):
    device = simulated(resources, VirtualClock(), profile="rgb")
    with pytest.raises(KeyError):
        device.set({"white": 1})
    with pytest.raises(ValueError, match="NaN"):
        device.set({"red": float("nan")})
