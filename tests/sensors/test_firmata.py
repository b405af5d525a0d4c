"""Firmata codec against bytes written out by hand from the protocol, noise, and the simulated Uno."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensors import firmata as fm
from sensors.firmata import (
    AnalogMappingResponse,
    AnalogMessage,
    CapabilityResponse,
    DigitalMessage,
    FirmataBoardState,
    FirmataParser,
    FirmwareReport,
    PinStateResponse,
    ProtocolVersion,
    StandardFirmataSimulator,
    StringData,
    UnknownSysex,
)

# "StandardFirmata.ino", each character as (LSB, MSB) 7-bit pairs.
NAME_BYTES = [
    *(0x53, 0x00),  # S
    *(0x74, 0x00),  # t
    *(0x61, 0x00),  # a
    *(0x6E, 0x00),  # n
    *(0x64, 0x00),  # d
    *(0x61, 0x00),  # a
    *(0x72, 0x00),  # r
    *(0x64, 0x00),  # d
    *(0x46, 0x00),  # F
    *(0x69, 0x00),  # i
    *(0x72, 0x00),  # r
    *(0x6D, 0x00),  # m
    *(0x61, 0x00),  # a
    *(0x74, 0x00),  # t
    *(0x61, 0x00),  # a
    *(0x2E, 0x00),  # .
    *(0x69, 0x00),  # i
    *(0x6E, 0x00),  # n
    *(0x6F, 0x00),  # o
]
FIRMWARE_BYTES = bytes([0xF0, 0x79, 0x02, 0x05, *NAME_BYTES, 0xF7])
VERSION_BYTES = bytes([0xF9, 0x02, 0x05])


# -- encoders: golden bytes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (fm.set_pin_mode(13, fm.OUTPUT), [0xF4, 0x0D, 0x01]),
        (fm.set_pin_mode(2, fm.INPUT_PULLUP), [0xF4, 0x02, 0x0B]),
        (fm.set_pin_mode(14, fm.ANALOG), [0xF4, 0x0E, 0x02]),
        (fm.set_pin_mode(9, fm.SERVO), [0xF4, 0x09, 0x04]),
        (fm.digital_write(13, 1), [0xF5, 13, 1]),
        (fm.digital_write(13, True), [0xF5, 13, 1]),
        (fm.digital_write(7, 0), [0xF5, 7, 0]),
        (fm.analog_write(3, 200), [0xE3, 0x48, 0x01]),
        (fm.analog_write(0, 0), [0xE0, 0x00, 0x00]),
        (fm.analog_write(15, 16383), [0xEF, 0x7F, 0x7F]),
        (fm.analog_write(44, 1500), [0xF0, 0x6F, 0x2C, 0x5C, 0x0B, 0xF7]),
        (fm.analog_write(16, 100), [0xF0, 0x6F, 0x10, 0x64, 0x00, 0xF7]),
        (fm.analog_write(3, 16384), [0xF0, 0x6F, 0x03, 0x00, 0x00, 0x01, 0xF7]),
        (fm.report_analog(0, True), [0xC0, 0x01]),
        (fm.report_analog(5, False), [0xC5, 0x00]),
        (fm.report_digital(0, True), [0xD0, 0x01]),
        (fm.report_digital(2, False), [0xD2, 0x00]),
        (fm.sampling_interval(100), [0xF0, 0x7A, 0x64, 0x00, 0xF7]),
        (fm.sampling_interval(1000), [0xF0, 0x7A, 0x68, 0x07, 0xF7]),
        (fm.query_firmware(), [0xF0, 0x79, 0xF7]),
        (fm.capability_query(), [0xF0, 0x6B, 0xF7]),
        (fm.analog_mapping_query(), [0xF0, 0x69, 0xF7]),
        (fm.pin_state_query(13), [0xF0, 0x6D, 0x0D, 0xF7]),
        (fm.query_version(), [0xF9]),
        (fm.system_reset(), [0xFF]),
        (fm.digital_port_write(1, 0b0010_0000), [0x91, 0x20, 0x00]),
        (fm.digital_port_write(0, 0xFF), [0x90, 0x7F, 0x01]),
        # board to host
        (fm.analog_report(0, 1023), [0xE0, 0x7F, 0x07]),
        (fm.digital_report(0, 0b0000_0100), [0x90, 0x04, 0x00]),
        (fm.version_report(2, 5), list(VERSION_BYTES)),
        (fm.firmware_report(2, 5, "StandardFirmata.ino"), list(FIRMWARE_BYTES)),
        (fm.string_data("Hi"), [0xF0, 0x71, 0x48, 0x00, 0x69, 0x00, 0xF7]),
        (fm.analog_mapping_response([None, 0, 1]), [0xF0, 0x6A, 0x7F, 0x00, 0x01, 0xF7]),
        (fm.capability_response([{}, {0: 1, 3: 8}]), [0xF0, 0x6C, 0x7F, 0x00, 0x01, 0x03, 0x08, 0x7F, 0xF7]),
        (fm.pin_state_response(13, 1, 1), [0xF0, 0x6E, 0x0D, 0x01, 0x01, 0xF7]),
        (fm.pin_state_response(3, 3, 200), [0xF0, 0x6E, 0x03, 0x03, 0x48, 0x01, 0xF7]),
    ],
)
def test_encoder_golden_bytes(encoded, expected):
    assert encoded == bytes(expected)


def test_mode_constants():
    assert (fm.INPUT, fm.OUTPUT, fm.ANALOG, fm.PWM, fm.SERVO, fm.INPUT_PULLUP) == (0, 1, 2, 3, 4, 11)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fm.set_pin_mode(128, fm.OUTPUT), "pin must be 0..127, not 128"),
        (lambda: fm.set_pin_mode(2, 200), "mode must be 0..127"),
        (lambda: fm.digital_write(-1, 1), "pin must be 0..127"),
        (lambda: fm.analog_write(3, -1), "value must be"),
        (lambda: fm.analog_write(3, 1 << 21), "value must be"),
        (lambda: fm.report_analog(16, True), "analog channel must be 0..15"),
        (lambda: fm.report_digital(16, True), "port must be 0..15"),
        (lambda: fm.sampling_interval(0), "sampling interval"),
        (lambda: fm.sampling_interval(16384), "sampling interval"),
        (lambda: fm.sysex(0x80), "sysex command"),
        (lambda: fm.sysex(0x71, [0x80]), "7-bit"),
    ],
)
def test_encoders_reject_what_the_wire_cannot_carry(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# -- parser: golden bytes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([0xE0, 0x7F, 0x07], AnalogMessage(0, 1023)),
        ([0xE5, 0x00, 0x04], AnalogMessage(5, 512)),
        ([0xEF, 0x7F, 0x7F], AnalogMessage(15, 16383)),
        ([0x90, 0x04, 0x00], DigitalMessage(0, 0b0000_0100)),
        ([0x91, 0x00, 0x01], DigitalMessage(1, 0b1000_0000)),
        ([0xF9, 0x02, 0x05], ProtocolVersion(2, 5)),
        (list(FIRMWARE_BYTES), FirmwareReport(2, 5, "StandardFirmata.ino")),
        ([0xF0, 0x79, 0x02, 0x03, 0xF7], FirmwareReport(2, 3, "")),
        (
            # pin 0: nothing; pin 1: INPUT, PULLUP, OUTPUT, PWM 8 bits, SERVO 14; pin 2: ANALOG 10 bits
            bytes.fromhex("F0 6C" + " 7F" + " 00 01 0B 01 01 01 03 08 04 0E 7F" + " 02 0A 7F" + " F7"),
            CapabilityResponse([{}, {0: 1, 11: 1, 1: 1, 3: 8, 4: 14}, {2: 10}]),
        ),
        ([0xF0, 0x6A, 0x7F, 0x7F, 0x00, 0x01, 0xF7], AnalogMappingResponse([None, None, 0, 1])),
        ([0xF0, 0x6E, 0x0D, 0x01, 0x01, 0xF7], PinStateResponse(13, 1, 1)),
        ([0xF0, 0x6E, 0x03, 0x03, 0x48, 0x01, 0xF7], PinStateResponse(3, 3, 200)),
        ([0xF0, 0x6E, 0x09, 0x04, 0x00, 0x00, 0x01, 0xF7], PinStateResponse(9, 4, 16384)),
        ([0xF0, 0x71, 0x48, 0x00, 0x69, 0x00, 0xF7], StringData("Hi")),
        ([0xF0, 0x71, 0x48, 0x00, 0x69, 0xF7], StringData("H")),  # odd last byte ignored
        ([0xF0, 0x77, 0x01, 0x02, 0xF7], UnknownSysex(0x77, b"\x01\x02")),
        ([0xF0, 0x6E, 0x1E, 0xF7], UnknownSysex(0x6E, b"\x1e")),  # pin state of a pin the board lacks
    ],
)
def test_parse_golden_bytes(data, expected):
    parser = FirmataParser()
    assert parser.feed(bytes(data)) == [expected]
    assert parser.errors == 0
    byte_by_byte = FirmataParser()
    assert [message for byte in data for message in byte_by_byte.feed(bytes([byte]))] == [expected]


def test_parse_several_messages_in_one_chunk_and_split_across_chunks():
    stream = VERSION_BYTES + FIRMWARE_BYTES + bytes([0xE0, 0x10, 0x02, 0x90, 0x04, 0x00])
    expected = [
        ProtocolVersion(2, 5),
        FirmwareReport(2, 5, "StandardFirmata.ino"),
        AnalogMessage(0, 0x110),
        DigitalMessage(0, 4),
    ]
    assert FirmataParser().feed(stream) == expected
    parser = FirmataParser()
    assert parser.feed(stream[:10]) == [ProtocolVersion(2, 5)]
    assert parser.feed(stream[10:-4]) == [FirmwareReport(2, 5, "StandardFirmata.ino")]
    assert parser.feed(stream[-4:]) == expected[2:]


def test_utf8_text_round_trips():
    assert FirmataParser().feed(fm.string_data("Zürich 苏州")) == [StringData("Zürich 苏州")]


# -- parser: garbage --------------------------------------------------------------------------------

ANALOG = bytes([0xE1, 0x00, 0x04])


@pytest.mark.parametrize(
    ("garbage", "errors"),
    [
        (b"\x01\x02\x03", 1),  # data bytes with no command: one stretch, one error
        (b"\xa0\x01\x02", 1),  # a command this direction does not have, and its data
        (b"\xc0\x01", 1),  # REPORT_ANALOG is host-to-board only
        (b"\xff", 1),  # SYSTEM_RESET likewise
        (b"\xe0\x01", 1),  # analog message cut short by the next command
        (b"\xf9\x02", 1),  # version cut short
        (b"\xf0\x79\x02", 1),  # sysex cut short
        (b"\xf7", 1),  # END_SYSEX with no sysex
        (b"\xf0\xf7", 1),  # empty sysex
        (b"\xf0\x79\x02\xf7", 1),  # firmware report without a minor version
        (b"\xf0\x6c\x00\xf7", 1),  # capability: a mode without its resolution
        (b"\xf0\x6c\x00\x01\xf7", 1),  # capability: last pin never ended
        (b"\xf0\x6e\x03\x03\xf7", 1),  # pin state without a state
        (b"\x01\xa0\x02\xe0\x05\xf0\x79\xf7\x7f", 5),  # all of the above in a row
        (b"", 0),
    ],
)
def test_garbage_is_skipped_counted_and_the_next_message_parses(garbage, errors):
    parser = FirmataParser()
    assert parser.feed(garbage + ANALOG) == [AnalogMessage(1, 512)]
    assert parser.errors == errors


def test_a_sysex_that_never_ends_is_dropped_at_the_bound():
    parser = FirmataParser(max_sysex=16)
    assert parser.feed(b"\xf0\x79" + b"\x41" * 100) == []
    assert parser.errors == 1
    assert parser.feed(b"\x41" * 5000 + b"\xf7" + ANALOG) == [AnalogMessage(1, 512)]
    assert parser.errors == 1  # the rest of the overlong sysex and its END_SYSEX are one error
    assert parser.feed(b"\xf0\x71" + b"\x41\x00" * 8 + b"\xf7") == []  # payload 17 > 16
    assert parser.feed(b"\xf0\x71" + b"\x41\x00" * 7 + b"\xf7") == [StringData("A" * 7)]


def test_default_sysex_bound_is_4096_bytes():
    parser = FirmataParser()
    assert parser.feed(b"\xf0\x70" + b"\x01" * 4095 + b"\xf7") == [UnknownSysex(0x70, b"\x01" * 4095)]
    assert parser.feed(b"\xf0\x70" + b"\x01" * 4096 + b"\xf7") == []
    assert parser.errors == 1


def test_a_long_run_of_noise_never_stalls_the_parser():
    parser = FirmataParser()
    assert parser.feed(b"\x42" * 100_000) == []
    assert parser.feed(ANALOG) == [AnalogMessage(1, 512)]
    assert parser.errors == 1


# -- parser: properties -----------------------------------------------------------------------------

texts = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20)
seven = st.integers(0, 127)
valid_messages = st.one_of(
    st.builds(lambda c, v: (fm.analog_report(c, v), AnalogMessage(c, v)), st.integers(0, 15), st.integers(0, 16383)),
    st.builds(lambda p, m: (fm.digital_report(p, m), DigitalMessage(p, m)), st.integers(0, 15), st.integers(0, 255)),
    st.builds(lambda a, b: (fm.version_report(a, b), ProtocolVersion(a, b)), seven, seven),
    st.builds(lambda a, b, n: (fm.firmware_report(a, b, n), FirmwareReport(a, b, n)), seven, seven, texts),
    st.builds(lambda t: (fm.string_data(t), StringData(t)), texts),
    st.builds(
        lambda pins: (fm.capability_response(pins), CapabilityResponse(pins)),
        st.lists(st.dictionaries(st.integers(0, 126), seven, max_size=6), max_size=8),
    ),
    st.builds(
        lambda channels: (fm.analog_mapping_response(channels), AnalogMappingResponse(channels)),
        st.lists(st.one_of(st.none(), st.integers(0, 126)), max_size=24),
    ),
    st.builds(
        lambda p, m, s: (fm.pin_state_response(p, m, s), PinStateResponse(p, m, s)),
        seven,
        seven,
        st.integers(0, (1 << 21) - 1),
    ),
    st.builds(
        lambda c, d: (fm.sysex(c, d), UnknownSysex(c, d)),
        seven.filter(lambda c: c not in (0x79, 0x6C, 0x6A, 0x6E, 0x71)),
        st.binary(max_size=20).map(lambda b: bytes(x & 0x7F for x in b)),
    ),
)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(0, 2000), max_size=20))
def test_arbitrary_bytes_never_raise(data, cuts):
    parser = FirmataParser()
    for chunk in _split(data, cuts):
        for message in parser.feed(chunk):
            assert isinstance(message, fm.FirmataMessage)
    assert parser.errors >= 0


@given(garbage=st.binary(max_size=300), message=valid_messages)
def test_a_valid_message_after_any_garbage_parses(garbage, message):
    encoded, expected = message
    parser = FirmataParser()
    parser.feed(garbage)
    assert parser.feed(encoded) == [expected]


@given(
    parts=st.lists(st.one_of(valid_messages.map(lambda m: m[0]), st.binary(max_size=12)), max_size=20),
    cuts=st.lists(st.integers(0, 2000), max_size=20),
)
def test_chunking_never_changes_the_result(parts, cuts):
    stream = b"".join(parts)
    whole = FirmataParser()
    expected = whole.feed(stream)
    byte_by_byte = FirmataParser()
    assert [m for i in range(len(stream)) for m in byte_by_byte.feed(stream[i : i + 1])] == expected
    assert byte_by_byte.errors == whole.errors
    chunked = FirmataParser()
    assert [m for chunk in _split(stream, cuts) for m in chunked.feed(chunk)] == expected
    assert chunked.errors == whole.errors


@given(messages=st.lists(valid_messages, max_size=20))
def test_valid_streams_parse_without_errors(messages):
    parser = FirmataParser()
    assert parser.feed(b"".join(encoded for encoded, _ in messages)) == [expected for _, expected in messages]
    assert parser.errors == 0


# -- board state ------------------------------------------------------------------------------------


def test_board_state_reports_changes_only():
    state = FirmataBoardState()
    assert state.apply(AnalogMessage(0, 512)) == [("A0", 512)]
    assert state.apply(AnalogMessage(0, 512)) == []
    assert state.apply(AnalogMessage(0, 513)) == [("A0", 513)]
    first = state.apply(DigitalMessage(0, 0b0000_0100))
    assert ("D2", True) in first
    assert len(first) == 8  # every pin of the port is new
    assert state.apply(DigitalMessage(0, 0b0000_0100)) == []
    assert state.apply(DigitalMessage(0, 0b0000_1000)) == [("D2", False), ("D3", True)]
    assert state.apply(DigitalMessage(1, 0b1000_0001)) == [(f"D{pin}", pin in (8, 15)) for pin in range(8, 16)]
    assert state.apply(ProtocolVersion(2, 5)) == []
    state.reset()
    assert state.apply(AnalogMessage(0, 513)) == [("A0", 513)]


def test_board_state_filters_to_the_pins_the_driver_set_up():
    state = FirmataBoardState(digital_pins=[2, 7], analog_channels=[1])
    assert state.apply(DigitalMessage(0, 0b1000_0100)) == [("D2", True), ("D7", True)]
    assert state.apply(DigitalMessage(0, 0b0000_0000)) == [("D2", False), ("D7", False)]
    assert state.apply(DigitalMessage(1, 0xFF)) == []
    assert state.apply(AnalogMessage(0, 100)) == []
    assert state.apply(AnalogMessage(1, 100)) == [("A1", 100)]
    assert state.digital == {2: False, 7: False}
    assert state.analog == {1: 100}


# -- simulator --------------------------------------------------------------------------------------


def _exchange(sim: StandardFirmataSimulator, host: bytes, parser: FirmataParser | None = None) -> list:
    """Host bytes to the simulator one at a time, as a slow serial line delivers them; the parsed replies."""
    parser = parser or FirmataParser()
    reply = b"".join(sim.handle(host[i : i + 1]) for i in range(len(host)))
    messages = parser.feed(reply)
    assert parser.errors == 0
    return messages


def test_simulator_startup_bytes():
    sim = StandardFirmataSimulator()
    assert sim.startup() == VERSION_BYTES + FIRMWARE_BYTES
    assert FirmataParser().feed(sim.startup()) == [ProtocolVersion(2, 5), FirmwareReport(2, 5, "StandardFirmata.ino")]


def test_simulator_answers_queries():
    sim = StandardFirmataSimulator()
    host = fm.query_version() + fm.query_firmware() + fm.capability_query() + fm.analog_mapping_query()
    version, firmware, capabilities, mapping = _exchange(sim, host)
    assert version == ProtocolVersion(2, 5)
    assert firmware == FirmwareReport(2, 5, "StandardFirmata.ino")
    assert isinstance(capabilities, CapabilityResponse)
    pins = capabilities.pins
    assert len(pins) == 20
    assert pins[0] == pins[1] == {}  # the USB serial link
    assert pins[2] == {fm.INPUT: 1, fm.INPUT_PULLUP: 1, fm.OUTPUT: 1, fm.SERVO: 14}
    assert pins[3] == {fm.INPUT: 1, fm.INPUT_PULLUP: 1, fm.OUTPUT: 1, fm.PWM: 8, fm.SERVO: 14}
    assert pins[14] == {fm.INPUT: 1, fm.INPUT_PULLUP: 1, fm.OUTPUT: 1, fm.ANALOG: 10, fm.SERVO: 14}
    assert pins[18] == {fm.INPUT: 1, fm.INPUT_PULLUP: 1, fm.OUTPUT: 1, fm.ANALOG: 10, fm.SERVO: 14, fm.I2C: 1}
    assert [pin for pin, modes in enumerate(pins) if fm.PWM in modes] == [3, 5, 6, 9, 10, 11]
    assert mapping == AnalogMappingResponse([None] * 14 + [0, 1, 2, 3, 4, 5])
    assert [command for command, _ in sim.commands] == [0xF9, 0xF0, 0xF0, 0xF0]


def test_simulator_capability_bytes_for_the_first_pins():
    reply = StandardFirmataSimulator().handle(fm.capability_query())
    # pins 0, 1: nothing; pin 2: INPUT 1, PULLUP 1, OUTPUT 1, SERVO 14; pin 3 adds PWM 8 before SERVO
    assert reply.startswith(
        bytes([0xF0, 0x6C, 0x7F, 0x7F, 0x00, 0x01, 0x0B, 0x01, 0x01, 0x01, 0x04, 0x0E, 0x7F])
        + bytes([0x00, 0x01, 0x0B, 0x01, 0x01, 0x01, 0x03, 0x08, 0x04, 0x0E, 0x7F])
    )
    assert reply.endswith(bytes([0x02, 0x0A, 0x04, 0x0E, 0x06, 0x01, 0x7F, 0xF7]))  # pin 19: ANALOG, SERVO, I2C


def test_analog_reports_only_when_enabled():
    sim = StandardFirmataSimulator()
    assert sim.set_analog(0, 512) == b""
    # Enabling sends the current value at once, like StandardFirmata.
    assert _exchange(sim, fm.report_analog(0, True)) == [AnalogMessage(0, 512)]
    assert sim.set_analog(0, 700) == bytes([0xE0, 0x3C, 0x05])
    assert sim.set_analog(1, 10) == b""  # channel 1 not enabled
    assert sim.sample() == fm.analog_report(0, 700)
    assert sim.handle(fm.report_analog(0, False)) == b""
    assert sim.set_analog(0, 800) == b""
    assert sim.sample() == b""


def test_setting_analog_mode_switches_reporting_like_the_firmware():
    sim = StandardFirmataSimulator()
    sim.set_analog(2, 300)
    assert _exchange(sim, fm.set_pin_mode(16, fm.ANALOG)) == [AnalogMessage(2, 300)]
    assert 2 in sim.analog_reporting
    assert sim.handle(fm.set_pin_mode(16, fm.INPUT)) == b""
    assert 2 not in sim.analog_reporting
    assert sim.set_analog(2, 301) == b""


def test_digital_reports_only_when_enabled_for_input_pins_and_on_change():
    sim = StandardFirmataSimulator()
    assert sim.handle(fm.set_pin_mode(2, fm.INPUT)) == b""
    assert sim.set_digital(2, True) == b""  # reporting off
    assert _exchange(sim, fm.report_digital(0, True)) == [DigitalMessage(0, 0b0000_0100)]  # port value at once
    assert sim.set_digital(2, True) == b""  # unchanged
    assert sim.set_digital(2, False) == bytes([0x90, 0x00, 0x00])
    assert sim.set_digital(5, True) == b""  # pin 5 is an OUTPUT: masked off, no change
    assert sim.set_digital(9, True) == b""  # port 1 not reporting
    assert sim.handle(fm.set_pin_mode(9, fm.INPUT) + fm.report_digital(1, True)) == fm.digital_report(1, 0b10)
    assert sim.handle(fm.report_digital(0, False)) == b""
    assert sim.set_digital(2, True) == b""
    with pytest.raises(ValueError, match="not a digital pin"):
        sim.set_digital(1, True)


def test_pullup_inputs_read_high_until_pulled_low():
    sim = StandardFirmataSimulator()
    reply = sim.handle(fm.set_pin_mode(4, fm.INPUT_PULLUP) + fm.report_digital(0, True))
    assert FirmataParser().feed(reply) == [DigitalMessage(0, 0b0001_0000)]
    state = FirmataBoardState(digital_pins=[4])
    assert state.apply(FirmataParser().feed(sim.set_digital(4, False))[0]) == [("D4", False)]


def test_simulator_records_modes_and_accepted_writes():
    sim = StandardFirmataSimulator()
    assert sim.pin_modes[13] == fm.OUTPUT
    assert sim.pin_modes[14] == fm.ANALOG
    host = (
        fm.digital_write(13, 1)  # OUTPUT by default: accepted
        + fm.digital_write(14, 1)  # ANALOG: ignored
        + fm.set_pin_mode(3, fm.PWM)
        + fm.analog_write(3, 200)
        + fm.analog_write(5, 100)  # still OUTPUT: ignored
        + fm.set_pin_mode(2, fm.PWM)  # pin 2 has no PWM: ignored
        + fm.set_pin_mode(9, fm.SERVO)
        + fm.analog_write(9, 20000)  # above 14 bits: EXTENDED_ANALOG
        + fm.digital_port_write(1, 0)  # port 1 low: its OUTPUT pins 8, 10..13 (9 is a servo, 14/15 analog)
        + fm.sampling_interval(50)
    )
    assert _exchange(sim, host) == []
    assert sim.digital_writes == [(13, 1), (8, 0), (10, 0), (11, 0), (12, 0), (13, 0)]
    assert sim.analog_writes == [(3, 200), (9, 20000)]
    assert sim.pin_modes[3] == fm.PWM
    assert sim.pin_modes[2] == fm.OUTPUT
    assert sim.pin_modes[9] == fm.SERVO
    assert sim.sampling_interval_ms == 50
    assert sim.pin_states[13] == 0


def test_pin_mode_the_firmware_does_not_know_gets_a_string_reply():
    sim = StandardFirmataSimulator()
    assert _exchange(sim, fm.set_pin_mode(7, fm.STEPPER)) == [StringData("Unknown pin mode")]
    assert sim.pin_modes[7] == fm.OUTPUT


def test_pin_state_query_round_trip():
    sim = StandardFirmataSimulator()
    host = fm.digital_write(13, 1) + fm.pin_state_query(13) + fm.set_pin_mode(3, fm.PWM) + fm.analog_write(3, 200)
    host += fm.pin_state_query(3) + fm.pin_state_query(40)
    assert _exchange(sim, host) == [
        PinStateResponse(13, fm.OUTPUT, 1),
        PinStateResponse(3, fm.PWM, 200),
        UnknownSysex(0x6E, bytes([40])),
    ]


def test_system_reset_restores_defaults_and_sends_nothing():
    sim = StandardFirmataSimulator()
    sim.handle(fm.set_pin_mode(2, fm.INPUT) + fm.report_digital(0, True) + fm.report_analog(0, True))
    sim.handle(fm.set_pin_mode(3, fm.PWM) + fm.sampling_interval(40))
    assert sim.handle(fm.system_reset()) == b""
    assert sim.resets == 1
    assert sim.pin_modes[2] == fm.OUTPUT
    assert sim.pin_modes[3] == fm.OUTPUT
    assert sim.analog_reporting == set()
    assert sim.digital_reporting == set()
    assert sim.set_analog(0, 5) == b""
    assert sim.sampling_interval_ms == 40  # a reset leaves the interval; only a reboot restores it
    sim.startup()
    assert sim.sampling_interval_ms == 19


def test_simulator_counts_garbage_and_keeps_going():
    sim = StandardFirmataSimulator()
    assert sim.handle(b"\x01\x02\xa0\xf4\x02") == b""
    assert sim.errors == 2
    assert FirmataParser().feed(sim.handle(fm.query_version())) == [ProtocolVersion(2, 5)]


@given(cuts=st.lists(st.integers(0, 200), max_size=30))
def test_simulator_is_indifferent_to_chunking(cuts):
    host = (
        fm.query_version()
        + fm.set_pin_mode(2, fm.INPUT)
        + fm.report_digital(0, True)
        + fm.report_analog(1, True)
        + fm.capability_query()
        + fm.digital_write(13, 1)
        + fm.set_pin_mode(5, fm.PWM)
        + fm.analog_write(5, 77)
        + fm.query_firmware()
    )
    reference = StandardFirmataSimulator()
    expected = reference.handle(host)
    sim = StandardFirmataSimulator()
    assert b"".join(sim.handle(chunk) for chunk in _split(host, cuts)) == expected
    assert sim.commands == reference.commands
    assert sim.digital_writes == [(13, 1)]
    assert sim.analog_writes == [(5, 77)]


def test_driver_flow_simulator_parser_board_state():
    """What a Firmata driver does: configure, enable reports, turn messages into pin values."""
    sim = StandardFirmataSimulator()
    parser = FirmataParser()
    state = FirmataBoardState(digital_pins=[2], analog_channels=[0])
    assert parser.feed(sim.startup())[1] == FirmwareReport(2, 5, "StandardFirmata.ino")
    sim.set_analog(0, 512)
    host = fm.set_pin_mode(2, fm.INPUT_PULLUP) + fm.report_digital(0, True) + fm.report_analog(0, True)
    changes = [change for message in _exchange(sim, host, parser) for change in state.apply(message)]
    assert changes == [("D2", True), ("A0", 512)]
    changes = [c for m in parser.feed(sim.set_digital(2, False) + sim.set_analog(0, 1023)) for c in state.apply(m)]
    assert changes == [("D2", False), ("A0", 1023)]
    assert [c for m in parser.feed(sim.sample()) for c in state.apply(m)] == []
