"""The OSC sensor with real UDP datagrams, the real `oscsend`, and garbage."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import subprocess
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from engine.clock import MonotonicClock, VirtualClock
from engine.drivers import DriverContext, Resources
from engine.errors import UserError
from engine.health import ComponentHealth
from engine.model import Scale
from engine.signals import SignalStore
from sensors.osc.inputs import OscSensor, OscSensorConfig, SimulatedOscSensor, coerce
from sensors.osc.service import OscQueryService
from tests.conftest import free_port, require_tool


def make_sensor(port: int, cls=OscSensor, clock=None) -> tuple[OscSensor, SignalStore]:
    config = OscSensorConfig.model_validate(
        {
            "kind": "osc",
            "host": "127.0.0.1",
            "port": port,
            "signals": {
                "wash": {"address": "/canal/wash", "type": "float", "range": [0, 1]},
                "count": {"address": "/canal/count", "type": "int"},
                "second": {"address": "/canal/pair", "arg": 1, "type": "float"},
                "armed": {"address": "/canal/armed", "type": "bool"},
                "label": {"address": "/canal/label", "type": "str"},
            },
        }
    )
    store = SignalStore(clock)
    for name, type_ in config.signal_types().items():
        store.declare(f"osc.{name}", type_)
    context = DriverContext("test", store, clock or VirtualClock(), Resources())
    return cls("osc", config, context), store


def message(address: str, *args) -> bytes:
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


async def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_real_udp_datagrams_become_signals():
    port = free_port(socket.SOCK_DGRAM)
    sensor, store = make_sensor(port)
    await sensor.open()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(message("/canal/wash", 0.5), ("127.0.0.1", port))
            sock.sendto(message("/canal/count", 3.7), ("127.0.0.1", port))
            sock.sendto(message("/canal/pair", 1.0, 2.5), ("127.0.0.1", port))
            sock.sendto(message("/canal/armed", True), ("127.0.0.1", port))
            sock.sendto(message("/canal/label", "灯"), ("127.0.0.1", port))
        await wait_until(lambda: sensor.received == 5)
        assert store.get("osc.wash").value == 0.5
        assert store.get("osc.count").value == 4
        assert store.get("osc.second").value == 2.5
        assert store.get("osc.armed").value is True
        assert store.get("osc.label").value == "灯"
        assert sensor._transport is not None
        rcvbuf = sensor._transport.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        assert rcvbuf > 212992  # larger than Linux's default, so bursts are not dropped
    finally:
        await sensor.close()


async def test_oscsend_from_liblo_is_understood():
    oscsend = require_tool("oscsend")
    port = free_port(socket.SOCK_DGRAM)
    sensor, store = make_sensor(port)
    await sensor.open()
    try:
        await asyncio.to_thread(
            subprocess.run, [oscsend, "127.0.0.1", str(port), "/canal/wash", "f", "0.75"], check=True, timeout=5
        )
        await asyncio.to_thread(
            subprocess.run, [oscsend, "127.0.0.1", str(port), "/canal/count", "i", "12"], check=True, timeout=5
        )
        await asyncio.to_thread(
            subprocess.run, [oscsend, "127.0.0.1", str(port), "/canal/armed", "T"], check=True, timeout=5
        )
        await wait_until(lambda: sensor.received == 3)
        assert store.get("osc.wash").value == 0.75
        assert store.get("osc.count").value == 12
        assert store.get("osc.armed").value is True
    finally:
        await sensor.close()


def test_bundles_are_delivered_at_once_even_with_a_future_time_tag():
    sensor, store = make_sensor(1)
    bundle = OscBundleBuilder(int(time.time()) + 3600)  # an hour ahead: must not be held back
    bundle.add_content(_built("/canal/wash", 0.25))
    inner = OscBundleBuilder(int(time.time()) + 60)
    inner.add_content(_built("/canal/count", 9))
    bundle.add_content(inner.build())
    sensor.handle_datagram(bundle.build().dgram)
    assert store.get("osc.wash").value == 0.25
    assert store.get("osc.count").value == 9


def _built(address: str, value):
    builder = OscMessageBuilder(address)
    builder.add_arg(value)
    return builder.build()


def test_garbage_is_counted_and_the_next_valid_message_still_works():
    sensor, store = make_sensor(1)
    # (python-osc deliberately pads a float cut short, as Reaktor sends them, so that is not garbage.)
    for junk in (b"", b"\x00", b"not osc at all", b"/canal/wash\x00,s\x00\x00\x00", b"#bundle\x00\x01"):
        sensor.handle_datagram(junk)
    assert sensor.parse_errors == 5
    sensor.handle_datagram(message("/canal/wash", 0.1))
    assert store.get("osc.wash").value == pytest.approx(0.1)


def test_unknown_addresses_and_wrong_types_are_counted():
    sensor, store = make_sensor(1)
    sensor.handle_datagram(message("/elsewhere", 1.0))
    sensor.handle_datagram(message("/canal/wash", "loud"))
    sensor.handle_datagram(message("/canal/pair", 1.0))  # the value is the missing second argument
    assert (sensor.unmatched, sensor.type_errors) == (1, 2)
    assert store.get("osc.wash").stale


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=256))
def test_no_datagram_can_crash_the_sensor(junk: bytes):
    sensor, store = make_sensor(1)
    sensor.handle_datagram(junk)
    sensor.handle_datagram(message("/canal/wash", 0.5))
    assert store.get("osc.wash").value == 0.5


@settings(max_examples=200)
@given(
    st.sampled_from(["/canal/wash", "/canal/count", "/canal/armed"]),
    st.one_of(
        st.floats(allow_nan=True, width=32), st.integers(-(2**31), 2**31 - 1), st.booleans(), st.text(max_size=8)
    ),
)
def test_any_argument_value_is_either_accepted_or_counted(address: str, value):
    sensor, store = make_sensor(1)
    sensor.handle_datagram(message(address, value))
    assert sensor.parse_errors == 0
    accepted = sum(not store.get(n).stale for n in store.names() if ".health." not in n)
    assert sensor.type_errors + sensor.nonfinite_errors + accepted == 1
    if isinstance(value, float) and not math.isfinite(value):  # never clamped, never taken for true
        assert sensor.nonfinite_errors == 1


def test_coercion_rules():
    assert coerce(1, "float") == 1.0 and isinstance(coerce(1, "float"), float)
    assert coerce(2.6, "int") == 3
    assert coerce(float("inf"), "int") is None
    midi = Scale.model_validate({"input": [0, 127]})
    for number in (math.inf, -math.inf, math.nan):  # not finite: never scaled, clamped or made true
        for type_ in ("float", "int", "bool", "str"):
            assert coerce(number, type_) is None and coerce(number, type_, midi) is None, (number, type_)
    huge = Scale.model_validate({"input": [0, 1e-308], "clamp": False})
    assert coerce(1e308, "float", huge) is None  # a finite number scaled past a float
    assert coerce(0.0, "bool") is False
    assert coerce("x", "float") is None
    assert coerce(b"blob", "str") is None


async def test_a_port_in_use_is_one_clear_sentence():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        sensor, _ = make_sensor(port)
        with pytest.raises(UserError, match=f"UDP port {port} is already in use"):
            await sensor.open()


async def test_simulator_sends_real_osc_and_obeys_faults():
    clock = VirtualClock()
    sensor, store = make_sensor(1, SimulatedOscSensor, clock)
    assert isinstance(sensor, SimulatedOscSensor)
    await sensor.open()
    task = asyncio.create_task(sensor.run())
    await clock.advance(2.0)
    assert not store.get("osc.wash").stale
    assert 0.0 <= float(store.get("osc.wash").value or -1) <= 1.0
    received = sensor.received
    assert received >= 30 * 5 // 2  # 20 Hz x 5 signals x 2 s, give or take the first tick

    sensor.inject("garbage")
    await clock.advance(1.0)
    assert sensor.parse_errors >= 15

    sensor.inject("disconnect")
    assert sensor.health.status == "offline" and store.get("osc.wash").stale
    before = sensor.received
    await clock.advance(1.0)
    assert sensor.received == before

    sensor.inject("clear")
    await clock.advance(1.0)
    assert sensor.health.status == "ok" and not store.get("osc.wash").stale
    task.cancel()


async def test_the_oscquery_service_publishes_the_addresses_over_http():
    port = free_port(socket.SOCK_DGRAM)
    config = OscSensorConfig.model_validate(
        {
            "kind": "osc",
            "host": "127.0.0.1",
            "port": port,
            "oscquery": {"port": 0, "advertise": False},
            "signals": {
                "wash": {"address": "/canal/wash", "range": [0, 1]},
                "season": {"address": "/canal/season", "type": "int", "range": [0, 3]},
                "any": {"address": "/canal/*/level"},
            },
        }
    )
    store = SignalStore()
    service = OscQueryService("test", {"osc": config}, ComponentHealth("oscquery", "service", store, VirtualClock()))
    await service.start()
    try:
        assert service.health.status == "ok"
        reader, writer = await asyncio.open_connection("127.0.0.1", service.servers["osc"].port)
        writer.write(b"GET /canal HTTP/1.1\r\nHost: x\r\n\r\n")
        body = (await reader.read()).split(b"\r\n\r\n", 1)[1]
        writer.close()
        tree = json.loads(body)
        assert tree["CONTENTS"]["wash"]["TYPE"] == "f" and tree["CONTENTS"]["wash"]["RANGE"] == [{"MIN": 0, "MAX": 1}]
        assert tree["CONTENTS"]["season"]["TYPE"] == "i"
        assert "*" not in json.dumps(tree)  # patterns are not concrete addresses
    finally:
        await service.close(1.0)
    assert service.servers == {} and service.health.status == "offline"


def test_brace_patterns_can_be_declared():
    config = OscSensorConfig.model_validate({"kind": "osc", "signals": {"level": {"address": "/{wash,spot}/level"}}})
    assert config.signals["level"].is_pattern


def make_pattern_sensor(allow=None) -> tuple[OscSensor, SignalStore]:
    config = OscSensorConfig.model_validate(
        {
            "kind": "osc",
            "host": "127.0.0.1",
            "port": 1,
            "allow": allow,
            "signals": {
                "any_level": {"address": "/canal/*/level"},
                "fader": {"address": "/fader[1-4]", "type": "int"},
                "lights": {"address": "/{wash,spot}/on", "type": "bool"},
                "midi": {"address": "/midi/cc", "scale": {"input": [0, 127], "output": [0, 1]}},
                "exact": {"address": "/canal/wash/level"},
            },
        }
    )
    store = SignalStore()
    for name, type_ in config.signal_types().items():
        store.declare(f"osc.{name}", type_)
    return OscSensor("osc", config, DriverContext("test", store, VirtualClock(), Resources())), store


def test_address_patterns_route_messages():
    sensor, store = make_pattern_sensor()
    sensor.handle_datagram(message("/canal/wash/level", 0.25))  # matches the exact address and the pattern
    assert store.get("osc.exact").value == 0.25 and store.get("osc.any_level").value == 0.25
    sensor.handle_datagram(message("/canal/spot/level", 0.75))
    assert store.get("osc.any_level").value == 0.75 and store.get("osc.exact").value == 0.25
    sensor.handle_datagram(message("/fader3", 7))
    sensor.handle_datagram(message("/fader5", 9))  # outside [1-4]
    assert store.get("osc.fader").value == 7
    sensor.handle_datagram(message("/spot/on", True))
    assert store.get("osc.lights").value is True
    sensor.handle_datagram(message("/canal/a/b/level", 1.0))  # `*` never crosses a `/`
    assert sensor.unmatched == 2


def test_scaling_converts_where_the_value_enters():
    sensor, store = make_pattern_sensor()
    sensor.handle_datagram(message("/midi/cc", 127))
    assert store.get("osc.midi").value == 1.0
    sensor.handle_datagram(message("/midi/cc", 200))  # clamped
    assert store.get("osc.midi").value == 1.0


def test_the_allow_list_drops_other_sources():
    sensor, store = make_pattern_sensor(allow=["10.0.0.0/8", "127.0.0.1"])
    sensor.handle_datagram(message("/midi/cc", 64), ("192.168.1.20", 5000))
    assert sensor.rejected == 1 and store.get("osc.midi").stale
    sensor.handle_datagram(message("/midi/cc", 64), ("10.2.3.4", 5000))
    sensor.handle_datagram(message("/fader1", 2), ("127.0.0.1", 5000))
    assert store.get("osc.fader").value == 2 and sensor.rejected == 1
    assert sensor.health_signals.errors == {"rejected": 1}


@pytest.mark.parametrize(
    "source",
    [None, (), ("not-an-address", 5000), ("10.0.0.300", 5000), ("", 5000), (None, 5000), ("::1%", 5000, 0, 0)],
)
def test_the_allow_list_refuses_a_source_it_cannot_read(source):
    sensor, store = make_pattern_sensor(allow=["10.0.0.0/8", "127.0.0.1", "::/0"])
    sensor.handle_datagram(message("/fader1", 3), source)
    assert sensor.rejected == 1 and store.get("osc.fader").stale
    assert sensor.health_signals.errors == {"rejected": 1}


async def test_oscsend_every_argument_type_the_mappings_use():
    oscsend = require_tool("oscsend")
    port = free_port(socket.SOCK_DGRAM)
    sensor, store = make_sensor(port)
    await sensor.open()
    try:
        for address, tag, value in [
            ("/canal/wash", "d", "0.125"),
            ("/canal/count", "h", "9000000000"),
            ("/canal/label", "s", "运河"),
            ("/canal/armed", "F", None),
        ]:
            args = [oscsend, "127.0.0.1", str(port), address, tag] + ([value] if value is not None else [])
            await asyncio.to_thread(subprocess.run, args, check=True, timeout=5)
        await wait_until(lambda: sensor.received == 4)
        assert store.get("osc.wash").value == 0.125
        assert store.get("osc.count").value == 9_000_000_000
        assert store.get("osc.label").value == "运河"
        assert store.get("osc.armed").value is False
        assert sensor.type_errors == 0
    finally:
        await sensor.close()


NONFINITE_ROUTES = {
    "wash": {"address": "/wash", "type": "float", "range": [0, 1]},
    "count": {"address": "/count", "type": "int"},
    "cc": {"address": "/cc", "type": "float", "scale": {"input": [0, 127]}},
    "step": {"address": "/step", "type": "int", "scale": {"input": [0, 1], "output": [0, 255]}},
    "armed": {"address": "/armed", "type": "bool"},
}


async def test_non_finite_numbers_over_udp_are_counted_and_dropped_never_clamped():
    """Found: `inf` on the flagship's /canal/wash drove the wash to full (scaled and clamped), and `nan` on a
    bool address read as true."""
    port = free_port(socket.SOCK_DGRAM)
    config = OscSensorConfig.model_validate(
        {"kind": "osc", "host": "127.0.0.1", "port": port, "signals": NONFINITE_ROUTES}
    )
    store = SignalStore()
    for name, type_ in config.signal_types().items():
        store.declare(f"osc.{name}", type_)
    sensor = OscSensor("osc", config, DriverContext("test", store, VirtualClock(), Resources()))
    await sensor.open()
    good = {"/wash": 0.25, "/count": 3, "/cc": 63.5, "/step": 0.5, "/armed": False}
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for address, value in good.items():
                sock.sendto(message(address, value), ("127.0.0.1", port))
            await wait_until(lambda: sensor.received == len(good))
            before = {name: store.get(f"osc.{name}").value for name in NONFINITE_ROUTES}
            assert before == {"wash": 0.25, "count": 3, "cc": 0.5, "step": 128, "armed": False}
            sent = 0
            for address in good:
                for number in (math.inf, -math.inf, math.nan):
                    for tag in ("f", "d"):  # float32 and float64 arguments
                        builder = OscMessageBuilder(address)
                        builder.add_arg(number, tag)
                        sock.sendto(builder.build().dgram, ("127.0.0.1", port))
                        sent += 1
            await wait_until(lambda: sensor.received == len(good) + sent)
        assert {name: store.get(f"osc.{name}").value for name in NONFINITE_ROUTES} == before
        assert sensor.health_signals.errors == {"nonfinite": sent} and sensor.type_errors == 0
        sensor.health_signals.publish()
        assert store.get("osc.health.errors").value == sent
    finally:
        await sensor.close()


class SteadySender(threading.Thread):
    """Sends the same datagram ``rate`` times a second on its own thread, on a fixed schedule."""

    def __init__(self, data: bytes, port: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.data, self.port, self.rate = data, port, rate
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        start = time.monotonic()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            while not self.stop.is_set():
                sock.sendto(self.data, ("127.0.0.1", self.port))
                self.sent += 1
                self.stop.wait(max(0.0, start + self.sent / self.rate - time.monotonic()))


async def test_rate_and_age_count_every_message_even_when_the_value_never_changes():
    port = free_port(socket.SOCK_DGRAM)
    sensor, store = make_sensor(port, clock=MonotonicClock())
    await sensor.open()
    task = asyncio.create_task(sensor.run())
    sender = SteadySender(message("/canal/wash", 0.5), port, rate=50)
    sender.start()
    try:
        await asyncio.sleep(2.6)  # the figures of the last whole second, published once a second
        rate, age = store.get("osc.health.rate").value, store.get("osc.health.age").value
    finally:
        sender.stop.set()
        await asyncio.to_thread(sender.join, 5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await sensor.close()
    assert store.get("osc.wash").value == 0.5
    assert 40 <= rate <= 60, rate
    assert 0 <= age < 0.1, age
