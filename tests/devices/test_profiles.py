"""Device profiles: colours, safe states, clamping, the relay guard, the motion limiter and every preset's bytes."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from devices.mqtt.profiles import (
    JSON_PRESETS,
    LIGHT_PRESETS,
    Message,
    MotionLimiter,
    MotionSample,
    MotorProfile,
    Profile,
    ProfileBase,
    ProfileProperty,
    RelayGuard,
    RelayProfile,
    gamma_correct,
    parse_color,
)

PROFILE = TypeAdapter(Profile)


def load(**config: Any) -> ProfileBase:
    return PROFILE.validate_python(config)


def messages(profile: ProfileBase, changed: dict[str, Any], topic: str = "dev") -> list[tuple[str, str]]:
    """Encode with the full state being the safe state plus the changes, as the driver keeps it."""
    state = {**profile.safe_state(), **changed}
    return [(m.topic, m.payload.decode()) for m in profile.encode(changed, state, topic)]


# ---------------------------------------------------------------------------- colours


@pytest.mark.parametrize(
    ("text", "rgb"),
    [
        ("#ff8800", (255, 136, 0)),
        ("#FF8800", (255, 136, 0)),
        ("#f80", (255, 136, 0)),
        (" rgb(255, 136, 0) ", (255, 136, 0)),
        ("rgb(0,0,0)", (0, 0, 0)),
        ("hsv(30,1,1)", (255, 128, 0)),
        ("hsv(0,1,1)", (255, 0, 0)),
        ("hsv(360,1,1)", (255, 0, 0)),
        ("hsv(120, 1, .5)", (0, 128, 0)),
        ("hsv(240,0,1)", (255, 255, 255)),
    ],
)
def test_parse_color(text: str, rgb: tuple[int, int, int]) -> None:
    assert parse_color(text) == rgb


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("#ff880", "is not a colour"),
        ("orange", "is not a colour"),
        ("rgb(256,0,0)", "rgb() channels are 0..255"),
        ("rgb(-1,0,0)", "is not a colour"),
        ("hsv(30,2,1)", "hsv() takes hue 0..360"),
        ("hsv(361,1,1)", "hsv() takes hue 0..360"),
    ],
)
def test_parse_color_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        parse_color(text)
    assert "#ff8800" in str(caught.value) or "0..255" in str(caught.value) or "0..360" in str(caught.value)


def test_parse_color_rejects_non_text() -> None:
    with pytest.raises(ValueError, match="a colour is text"):
        parse_color(0xFF8800)  # type: ignore[arg-type]


def test_color_alias_sets_red_green_blue_and_leaves_white() -> None:
    rgbw = load(profile="rgbw")
    assert rgbw.coerce("color", "hsv(30,1,1)") == {"red": 255, "green": 128, "blue": 0}
    assert "color" in rgbw.settable_properties()
    assert "color" not in rgbw.properties()
    with pytest.raises(ValueError, match="is not a colour"):
        rgbw.coerce("color", "teal")


def test_gamma() -> None:
    assert [gamma_correct(v, 2.2) for v in (0, 128, 255)] == [0, 56, 255]
    assert gamma_correct(136, 1.0) == 136
    assert gamma_correct(300, 2.0) == 255
    rgb = load(profile="rgb", gamma=2.0)
    assert messages(rgb, {"red": 128, "green": 255}) == [("", '{"red": 64, "green": 255}')]
    with pytest.raises(ValidationError, match="greater than 0"):
        load(profile="rgb", gamma=0)


# ---------------------------------------------------------------------------- properties, clamping, safe states


def test_dimmer_clamps_and_rejects_non_numbers() -> None:
    dimmer = load(profile="dimmer")
    assert dimmer.coerce("level", 1.7) == {"level": 1.0}
    assert dimmer.coerce("level", -3) == {"level": 0.0}
    assert dimmer.property_range("level") == (0.0, 1.0)
    with pytest.raises(ValueError, match="not a finite number"):
        dimmer.coerce("level", math.nan)
    with pytest.raises(ValueError, match="`brightness` is not a property of a dimmer"):
        dimmer.coerce("brightness", 1)


def test_channels_are_rounded_ints_in_range() -> None:
    rgb = load(profile="rgb")
    assert rgb.coerce("red", 127.5) == {"red": 128}
    assert rgb.coerce("blue", 999) == {"blue": 255}


def test_moving_head_clamps_to_limits_and_goes_home() -> None:
    head = load(profile="moving_head", pan_limits=[-90, 90], tilt_limits=[0, 120], home=[10, 45])
    assert head.coerce("pan", 200) == {"pan": 90.0}
    assert head.coerce("tilt", -5) == {"tilt": 0.0}
    assert head.safe_state() == {"pan": 10.0, "tilt": 45.0, "level": 0.0}
    assert head.property_range("tilt") == (0.0, 120.0)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"home": [100, 0], "pan_limits": [-90, 90]}, r"`home` pan 100 is outside the pan limits \[-90, 90\]"),
        ({"tilt_limits": [10, 10]}, r"`tilt_limits` must be \[min, max\] with min < max"),
    ],
)
def test_moving_head_geometry_errors(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        load(profile="moving_head", **config)


@pytest.mark.parametrize(
    ("config", "safe"),
    [
        ({"profile": "dimmer"}, {"level": 0.0}),
        ({"profile": "rgb"}, {"level": 0.0, "red": 0, "green": 0, "blue": 0}),
        ({"profile": "rgbw"}, {"level": 0.0, "red": 0, "green": 0, "blue": 0, "white": 0}),
        ({"profile": "relay"}, {"on": False}),
        ({"profile": "motor", "soft_limits": [0, 5], "max_speed": 1, "max_accel": 1}, {"speed": 0.0, "enabled": False}),
        ({"profile": "projector"}, {"shutter": True}),
        ({"profile": "dimmer", "safe": {"level": 0.2}}, {"level": 0.2}),
        ({"profile": "rgbw", "safe": {"white": 40}}, {"level": 0.0, "red": 0, "green": 0, "blue": 0, "white": 40}),
        ({"profile": "projector", "safe": {"power": False}}, {"power": False, "shutter": True}),
        (
            {"profile": "projector", "inputs": ["hdmi1", "sdi"], "safe": {"input": "sdi"}},
            {"shutter": True, "input": "sdi"},
        ),
    ],
)
def test_safe_states_and_overrides(config: dict[str, Any], safe: dict[str, Any]) -> None:
    assert PROFILE.validate_python(config).safe_state() == safe


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"profile": "dimmer", "safe": {"level": 2}}, r"safe.level: 2 is outside the range \[0, 1\]"),
        ({"profile": "dimmer", "safe": {"level": True}}, "safe.level: must be a number for a float property"),
        ({"profile": "rgb", "safe": {"red": 12.5}}, "safe.red: must be a whole number for an int property"),
        ({"profile": "relay", "safe": {"on": "yes"}}, "safe.on: must be true or false"),
        ({"profile": "dimmer", "safe": {"lvl": 0}}, r"safe: `lvl` is not a property of a dimmer \(it has: level\)"),
        ({"profile": "projector", "safe": {"input": "vga"}}, "safe.input: `vga` is not one of: hdmi1"),
        (
            {"profile": "motor", "soft_limits": [0, 5], "max_speed": 1, "max_accel": 1, "safe": {"position": 9}},
            r"safe.position: 9 is outside the range \[0, 5\]",
        ),
    ],
)
def test_safe_override_errors(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PROFILE.validate_python(config)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"profile": "dimmer", "levle": 1}, "levle\n  Extra inputs are not permitted"),
        ({"profile": "spotlight"}, "does not match any of the expected tags: 'dimmer', 'rgb'"),
        (
            {"profile": "motor", "payload": "tasmota", "soft_limits": [0, 1], "max_speed": 1, "max_accel": 1},
            r"the motor profile speaks only `json`, not `tasmota` "
            r"\(payload presets are for dimmer, rgb, rgbw and relay\)",
        ),
        ({"profile": "rgbw", "payload": "zigbee2mqtt"}, "zigbee2mqtt colour has no white channel"),
        (
            {"profile": "dimmer", "payload": "hue"},
            "Input should be 'json', 'zigbee2mqtt', 'tasmota', 'shelly' or 'wled'",
        ),
        ({"profile": "motor", "soft_limits": [3, 1], "max_speed": 1, "max_accel": 1}, "`soft_limits` must be"),
        (
            {"profile": "motor", "soft_limits": [0, 1], "max_speed": 0, "max_accel": 1},
            "max_speed\n  Input should be greater",
        ),
        ({"profile": "relay", "min_off_time": "-3s"}, "a duration cannot be negative"),
        ({"profile": "projector", "inputs": []}, "inputs\n  Tuple should have at least 1 item"),
        (
            {"profile": "generic_template", "template": "{lvl}", "properties": {"level": {"safe": 0}}},
            r"`template` names `\{lvl\}`, which is not a property \(it has: level, device\)",
        ),
        (
            {"profile": "generic_template", "template": "x", "payload": "wled", "properties": {"a": {"safe": 0}}},
            "it writes its own `topic` and `template`",
        ),
        (
            {"profile": "generic_template", "template": "x", "properties": {"a": {"type": "bool", "safe": 3}}},
            "`safe` must be true or false",
        ),
    ],
)
def test_validation_errors(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PROFILE.validate_python(config)


def test_profile_property_checks_its_own_shape() -> None:
    with pytest.raises(ValidationError, match="a `range` only applies to numbers"):
        ProfileProperty(type="bool", range=(0, 1), safe=False)
    with pytest.raises(ValidationError, match="`choices` only apply to str properties"):
        ProfileProperty(type="int", choices=("a",), safe=0)
    assert ProfileProperty(type="bool", safe=None).coerce("off") is False
    with pytest.raises(ValueError, match="is not true or false"):
        ProfileProperty(type="bool", safe=None).coerce("maybe")


def test_class_traits() -> None:
    motor = load(profile="motor", soft_limits=[0, 5], max_speed=1, max_accel=1)
    assert motor.motion is True
    assert load(profile="dimmer").motion is False
    assert load(profile="dimmer").max_rate == 44.0
    assert load(profile="relay").max_rate == 2.0


# ---------------------------------------------------------------------------- relay guard


def test_relay_earliest_on() -> None:
    relay = load(profile="relay", min_off_time="30s")
    assert isinstance(relay, RelayProfile)
    assert relay.earliest_on(None) == -math.inf
    assert relay.earliest_on(100.0) == 130.0


def test_relay_guard_holds_off_for_min_off_time() -> None:
    relay = load(profile="relay", min_off_time="10s")
    assert isinstance(relay, RelayProfile)
    guard = relay.guard()
    assert guard.permit(False, 0.0) is False  # start-up safe state counts as switching off
    assert guard.permit(True, 5.0) is False  # too early: stay off
    assert guard.earliest_on() == 10.0
    assert guard.permit(True, 10.0) is True
    assert guard.permit(True, 11.0) is True  # staying on is not a switch
    assert guard.permit(False, 12.0) is False
    assert guard.permit(False, 15.0) is False  # repeated off does not restart the rest
    assert guard.permit(True, 21.9) is False
    assert guard.permit(True, 22.0) is True


def test_relay_guard_without_history_allows_on() -> None:
    guard = RelayGuard(min_off_time=10.0)
    assert guard.permit(True, 0.0) is True


# ---------------------------------------------------------------------------- motion limiter

LIMITER = MotionLimiter(max_speed=2.0, max_accel=1.0)


def test_speed_is_limited_by_accel_then_max_speed() -> None:
    first = LIMITER.limit_speed(MotionSample(0.0, 0.0, 0.0), 5.0, 0.5)
    assert first == MotionSample(0.125, 0.5, 0.5)
    later = LIMITER.limit_speed(MotionSample(0.0, 1.5, 0.0), 5.0, 1.0)
    assert later == MotionSample(1.75, 2.0, 1.0)  # accel would allow 2.5: max_speed caps it
    reverse = LIMITER.limit_speed(MotionSample(0.0, 2.0, 0.0), -2.0, 1.0)
    assert reverse == MotionSample(1.5, 1.0, 1.0)  # decelerating at max_accel, not reversing at once


def test_no_time_no_change() -> None:
    assert LIMITER.limit_speed(MotionSample(3.0, 1.0, 5.0), 2.0, 4.0) == MotionSample(3.0, 1.0, 4.0)


def test_speed_brakes_before_a_soft_limit_and_stops_on_it() -> None:
    limiter = MotionLimiter(max_speed=2.0, max_accel=1.0, soft_limits=(0.0, 10.0))
    # 0.5 from the limit: braking allows sqrt(2·1·0.5) = 1.0, so no faster than that.
    assert limiter.limit_speed(MotionSample(9.5, 1.0, 0.0), 2.0, 0.5) == MotionSample(10.0, 0.0, 0.5)
    assert limiter.limit_speed(MotionSample(10.0, 0.0, 1.0), 2.0, 2.0) == MotionSample(10.0, 0.0, 2.0)
    assert limiter.limit_speed(MotionSample(10.0, 0.0, 1.0), -2.0, 2.0) == MotionSample(9.5, -1.0, 2.0)


def test_position_ramps_towards_target() -> None:
    sample = MotionSample(0.0, 0.0, 0.0)
    sample = LIMITER.limit_position(sample, 10.0, 1.0)
    assert sample == MotionSample(0.5, 1.0, 1.0)
    sample = LIMITER.limit_position(sample, 10.0, 2.0)
    assert sample == MotionSample(2.0, 2.0, 2.0)
    sample = LIMITER.limit_position(sample, 10.0, 3.0)
    assert sample == MotionSample(4.0, 2.0, 3.0)


def test_position_arrives_and_stops() -> None:
    assert LIMITER.limit_position(MotionSample(9.5, 1.0, 0.0), 10.0, 1.0) == MotionSample(10.0, 0.0, 1.0)
    assert LIMITER.limit_position(MotionSample(10.0, 0.0, 1.0), 10.0, 2.0) == MotionSample(10.0, 0.0, 2.0)


def test_position_target_is_clamped_into_soft_limits() -> None:
    motor = load(profile="motor", soft_limits=[0, 1], max_speed=100, max_accel=100)
    assert isinstance(motor, MotorProfile)
    limiter = motor.limiter()
    first = limiter.limit_position(MotionSample(0.5, 0.0, 0.0), 50.0, 1.0)
    assert first == MotionSample(0.75, 0.5, 1.0)  # heading for 1.0 (the limit), not 50
    assert limiter.limit_position(first, 50.0, 2.0) == MotionSample(1.0, 0.0, 2.0)


@settings(max_examples=200, deadline=None)
@given(
    start=st.floats(0, 10),
    speed=st.floats(-2, 2),
    target=st.floats(-20, 20),
    steps=st.lists(st.floats(0.001, 0.5), min_size=1, max_size=30),
)
def test_limiter_never_exceeds_speed_or_leaves_limits(
    start: float, speed: float, target: float, steps: list[float]
) -> None:
    limiter = MotionLimiter(max_speed=2.0, max_accel=1.0, soft_limits=(0.0, 10.0))
    sample = MotionSample(start, speed, 0.0)
    for dt in steps:
        new = limiter.limit_position(sample, target, sample.time + dt)
        assert abs(new.speed) <= 2.0 + 1e-9
        assert 0.0 <= new.position <= 10.0
        if new.speed != 0.0:  # only the final stop may brake harder than max_accel
            assert abs(new.speed - sample.speed) <= 1.0 * dt + 1e-9
        sample = new


# ---------------------------------------------------------------------------- presets: exact messages


def test_json_preset_sends_changed_properties_on_the_command_topic() -> None:
    assert messages(load(profile="dimmer"), {"level": 0.5}) == [("", '{"level": 0.5}')]
    assert messages(load(profile="relay"), {"on": True}) == [("", '{"on": true}')]
    head = load(profile="moving_head")
    assert messages(head, {"pan": 12.5, "level": 1.0}) == [("", '{"pan": 12.5, "level": 1.0}')]
    motor = load(profile="motor", soft_limits=[0, 5], max_speed=1, max_accel=1)
    assert messages(motor, {"position": 2.0, "enabled": True}) == [("", '{"position": 2.0, "enabled": true}')]
    projector = load(profile="projector", inputs=["hdmi1", "sdi"])
    assert messages(projector, {"input": "sdi", "shutter": False}) == [("", '{"input": "sdi", "shutter": false}')]
    assert load(profile="dimmer").encode({}, {"level": 0.0}, "dev") == []


ORANGE = {"level": 0.5, "red": 255, "green": 136, "blue": 0}


@pytest.mark.parametrize(
    ("config", "changed", "expected"),
    [
        ({"profile": "dimmer"}, {"level": 0.5}, [("z/wash/set", '{"state": "ON", "brightness": 127}')]),
        ({"profile": "dimmer"}, {"level": 0.001}, [("z/wash/set", '{"state": "OFF"}')]),
        ({"profile": "relay"}, {"on": True}, [("z/wash/set", '{"state": "ON"}')]),
        (
            {"profile": "rgb"},
            ORANGE,
            [("z/wash/set", '{"state": "ON", "brightness": 127, "color": {"r": 255, "g": 136, "b": 0}}')],
        ),
        ({"profile": "rgb", "gamma": 2.2}, {"green": 136}, [("z/wash/set", '{"color": {"r": 0, "g": 64, "b": 0}}')]),
    ],
)
def test_zigbee2mqtt(config: dict[str, Any], changed: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert messages(PROFILE.validate_python({**config, "payload": "zigbee2mqtt"}), changed, "z/wash") == expected


@pytest.mark.parametrize(
    ("config", "changed", "expected"),
    [
        ({"profile": "dimmer"}, {"level": 0.5}, [("cmnd/t1/Dimmer", "50"), ("cmnd/t1/POWER", "ON")]),
        ({"profile": "dimmer"}, {"level": 0.0}, [("cmnd/t1/POWER", "OFF")]),
        ({"profile": "relay"}, {"on": False}, [("cmnd/t1/POWER", "OFF")]),
        (
            {"profile": "rgb"},
            ORANGE,
            [("cmnd/t1/Color", "FF8800"), ("cmnd/t1/Dimmer", "50"), ("cmnd/t1/POWER", "ON")],
        ),
        (
            {"profile": "rgbw"},
            {"white": 16},
            [("cmnd/t1/Color", "00000010"), ("cmnd/t1/POWER", "OFF")],  # level still 0: colour must not light it
        ),
    ],
)
def test_tasmota(config: dict[str, Any], changed: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert messages(PROFILE.validate_python({**config, "payload": "tasmota"}), changed, "t1") == expected


@pytest.mark.parametrize(
    ("config", "changed", "expected"),
    [
        ({"profile": "dimmer"}, {"level": 0.5}, [("shellies/s1/light/0/set", '{"turn": "on", "brightness": 50}')]),
        ({"profile": "dimmer"}, {"level": 0.0}, [("shellies/s1/light/0/set", '{"turn": "off"}')]),
        ({"profile": "relay"}, {"on": True}, [("shellies/s1/relay/0/command", "on")]),
        ({"profile": "relay"}, {"on": False}, [("shellies/s1/relay/0/command", "off")]),
        (
            {"profile": "rgbw"},
            {**ORANGE, "white": 9},
            [
                (
                    "shellies/s1/light/0/set",
                    '{"turn": "on", "gain": 50, "mode": "color", "red": 255, "green": 136, "blue": 0, "white": 9}',
                )
            ],
        ),
    ],
)
def test_shelly(config: dict[str, Any], changed: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert messages(PROFILE.validate_python({**config, "payload": "shelly"}), changed, "s1") == expected


@pytest.mark.parametrize(
    ("config", "changed", "expected"),
    [
        ({"profile": "dimmer"}, {"level": 0.5}, [("wled/w1/api", '{"on": true, "bri": 128}')]),
        ({"profile": "dimmer"}, {"level": 0.0}, [("wled/w1/api", '{"on": false}')]),
        ({"profile": "relay"}, {"on": True}, [("wled/w1/api", '{"on": true}')]),
        ({"profile": "rgb"}, ORANGE, [("wled/w1/api", '{"on": true, "bri": 128, "seg": [{"col": [[255, 136, 0]]}]}')]),
        ({"profile": "rgbw"}, {"white": 7}, [("wled/w1/api", '{"seg": [{"col": [[0, 0, 0, 7]]}]}')]),
    ],
)
def test_wled(config: dict[str, Any], changed: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert messages(PROFILE.validate_python({**config, "payload": "wled"}), changed, "wled/w1") == expected


def test_generic_template() -> None:
    fog = load(
        profile="generic_template",
        topic="{device}/cmd",
        template='{"bri": {level}, "on": {on}, "mode": "{mode}"}',
        properties={
            "level": {"type": "float", "range": [0, 1], "safe": 0},
            "on": {"type": "bool", "safe": False},
            "mode": {"type": "str", "safe": "idle"},
        },
    )
    assert fog.coerce("level", 3) == {"level": 1.0}
    assert messages(fog, {"level": 0.5}, "fogger1") == [("fogger1/cmd", '{"bri": 0.5, "on": false, "mode": "idle"}')]
    assert fog.encode({}, {}, "fogger1") == []
    plain = load(profile="generic_template", template="{level}", properties={"level": {"type": "int", "safe": 0}})
    assert plain.encode({"level": 3}, {"level": 3}, "x") == [Message("", b"3")]


# ---------------------------------------------------------------------------- hypothesis: any valid state encodes

LIGHT_CONFIGS: list[dict[str, Any]] = [
    {"profile": "dimmer"},
    {"profile": "rgb", "gamma": 2.2},
    {"profile": "rgbw", "gamma": 0.5},
    {"profile": "relay", "min_off_time": "1s"},
]


def _valid_profiles() -> list[ProfileBase]:
    profiles: list[ProfileBase] = [
        PROFILE.validate_python({**config, "payload": preset})
        for config in LIGHT_CONFIGS
        for preset in LIGHT_PRESETS
        if preset in PROFILE.validate_python(config).presets
    ]
    profiles += [
        load(profile="moving_head"),
        load(profile="motor", soft_limits=[-1, 1], max_speed=1, max_accel=1),
        load(profile="projector", inputs=["hdmi1", "sdi"]),
    ]
    return profiles


@st.composite
def profile_and_state(draw: st.DrawFn) -> tuple[ProfileBase, dict[str, Any], dict[str, Any]]:
    profile = draw(st.sampled_from(_valid_profiles()))
    state: dict[str, Any] = {}
    for name, spec in profile.properties().items():
        raw: Any
        if spec.type == "bool":
            raw = draw(st.booleans())
        elif spec.type == "str":
            raw = draw(st.sampled_from(spec.choices or ("x",)))
        else:
            raw = draw(st.floats(-1e6, 1e6, allow_nan=False))  # coerce clamps it into the range
        state.update(profile.coerce(name, raw))
    changed_names = draw(st.lists(st.sampled_from(sorted(state)), unique=True))
    return profile, state, {name: state[name] for name in changed_names}


@settings(max_examples=300, deadline=None)
@given(profile_and_state())
def test_any_valid_state_encodes_and_json_presets_decode(
    case: tuple[ProfileBase, dict[str, Any], dict[str, Any]],
) -> None:
    profile, state, changed = case
    out = profile.encode(changed, state, "dev/x")
    assert bool(out) == bool(changed)
    for message in out:
        assert isinstance(message.payload, bytes)
        is_shelly_relay = message.topic.endswith("/relay/0/command")
        if profile.payload in JSON_PRESETS and not is_shelly_relay:
            decoded = json.loads(message.payload)
            assert isinstance(decoded, dict)
            assert decoded
