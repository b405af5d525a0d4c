"""The studio's simulated visitors: a few numbers made into MediaPipe landmarks that the real pose code
reads as a visitor (hands raised or not, standing in a zone or not); the simulated pose sensor shows
them, alone when its recording is muted, or at 30 fps of their own when it has none; and on the
flagship, a simulated visitor raising both hands lifts `body.nearest.hands_raised` within seconds."""

from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

from engine.clock import VirtualClock
from engine.control.commands import Actor
from engine.drivers import DriverContext, Resources
from engine.runtime import RuntimeOptions, assemble
from engine.signals import SignalStore
from engine.studio.simulation import simulation_state
from engine.validate import load_exhibit
from launcher import build_registry
from sensors.pose import driver as pose_driver
from sensors.pose.driver import PoseSensorConfig, SimulatedPoseSensor
from sensors.pose.features import body_features
from sensors.pose.pipeline import PosePipeline
from sensors.pose.puppets import Puppet, TooManyPuppets, puppet_landmarks
from sensors.pose.types import N_LANDMARKS, PoseFrame
from tests.conftest import FLAGSHIP, free_port

ADMIN = Actor("ada", "admin", "console", "127.0.0.1")
ASPECT = 640 / 480


def flagship_pose() -> PoseSensorConfig:
    """The flagship's own pose sensor configuration (its `bridge` zone: x 0.2..0.8, y 0.55..1)."""
    config = load_exhibit(FLAGSHIP, build_registry()).sensors["body"]
    assert isinstance(config, PoseSensorConfig)
    return config


def run_pipeline(config: PoseSensorConfig, puppets: list[Puppet], seconds: float = 1.0) -> SignalStore:
    """The puppets through the real pipeline (tracking, smoothing, features, zones) at 30 fps."""
    store = SignalStore(VirtualClock())
    for name, type_ in config.signal_types().items():
        store.declare(f"body.{name}", type_)
    pipeline = PosePipeline("body", config.pipeline_settings(), store)
    for k in range(round(seconds * 30)):
        people = tuple(puppet_landmarks(p, ASPECT) for p in puppets)
        pipeline.process(PoseFrame(k, k / 30, 640, 480, people))
    return store


def test_puppet_landmarks_are_in_the_recording_format():
    landmarks = puppet_landmarks(Puppet(1))
    assert landmarks.shape == (N_LANDMARKS, 4) and landmarks.dtype == np.float32
    assert np.isfinite(landmarks).all() and (landmarks[:, 3] >= 0.5).all()
    assert ((landmarks[:, :2] >= 0) & (landmarks[:, :2] <= 1)).all()


@pytest.mark.parametrize("raise_", [0.0, 1.0])
def test_both_hands_at_a_raise_give_hands_raised_near_it(raise_: float):
    features = body_features(puppet_landmarks(Puppet(1, left_hand=raise_, right_hand=raise_)), aspect=ASPECT)
    assert features.hands_raised == pytest.approx(raise_, abs=0.05)
    assert features.both_hands_up is (raise_ == 1.0)
    store = run_pipeline(flagship_pose(), [Puppet(1, left_hand=raise_, right_hand=raise_)])
    assert store.get("body.nearest.hands_raised").value == pytest.approx(raise_, abs=0.05)


def test_hand_height_follows_each_raise_and_the_feet_are_where_the_puppet_stands():
    heights = [
        body_features(puppet_landmarks(Puppet(1, x=0.3, y=0.9, right_hand=r)), aspect=ASPECT).hand_height
        for r in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    assert heights == sorted(heights) and heights[0] == pytest.approx(0.0, abs=0.05) and heights[-1] > 1.2
    one_hand = body_features(puppet_landmarks(Puppet(1, left_hand=1.0)), aspect=ASPECT)
    assert one_hand.hands_raised == pytest.approx(0.0, abs=0.01)  # hands_raised takes the lower hand
    assert one_hand.left_hand_height > 1.2 and one_hand.right_hand_height < 0.1
    feet = body_features(puppet_landmarks(Puppet(1, x=0.3, y=0.9)), aspect=ASPECT)
    assert (feet.floor_x, feet.floor_y) == (pytest.approx(0.3, abs=1e-3), pytest.approx(0.9, abs=1e-3))


def test_a_puppet_on_the_bridge_is_in_the_flagships_zone_and_one_beside_it_is_not():
    config = flagship_pose()
    assert config.zones["bridge"].polygon == [(0.2, 0.55), (0.8, 0.55), (0.8, 1.0), (0.2, 1.0)]
    on = run_pipeline(config, [Puppet(1, x=0.5, y=0.85)])
    assert on.get("body.zone.bridge.count").value == 1
    assert on.get("body.zone.bridge.dwell").value > 0.5
    beside = run_pipeline(config, [Puppet(1, x=0.1, y=0.85), Puppet(2, x=0.5, y=0.45)])
    assert beside.get("body.count").value == 2
    assert beside.get("body.zone.bridge.count").value == 0


# --- the simulated pose sensor ---------------------------------------------------------------------------------


def make_sensor(clock: VirtualClock, **extra: object) -> tuple[SimulatedPoseSensor, SignalStore]:
    config = PoseSensorConfig.model_validate({"kind": "pose", "source": {"camera": 0}, **extra})
    store = SignalStore(clock)
    for name, type_ in config.signal_types().items():
        store.declare(f"body.{name}", type_)
    sensor = SimulatedPoseSensor("body", config, DriverContext("test", store, clock, Resources(), FLAGSHIP.parent))
    return sensor, store


async def test_muting_the_recording_leaves_only_the_simulated_visitors():
    clock = VirtualClock()
    sensor, store = make_sensor(
        clock,
        simulate="recordings/visitors.jsonl.gz",
        zones={"bridge": {"polygon": [[0.2, 0.55], [0.8, 0.55], [0.8, 1.0], [0.2, 1.0]]}},
    )
    task = asyncio.create_task(sensor.run())
    try:
        await clock.advance(14.0)  # two recorded visitors are in view at 14 s
        assert store.get("body.count").value == 2
        puppet = sensor.add_puppet({"x": 0.5, "y": 0.95, "height": 0.8, "left_hand": 1.0, "right_hand": 1.0})
        await clock.advance(1.0)
        assert store.get("body.count").value == 3  # with the recording: everyone
        sensor.mute_recording(True)
        await clock.advance(1.0)
        assert store.get("body.count").value == 1
        assert store.get("body.nearest.hands_raised").value > 0.9
        assert store.get("body.nearest.floor_x").value == pytest.approx(0.5, abs=0.01)
        assert store.get("body.zone.bridge.count").value == 1
        assert sensor.pose_puppet(puppet, {"x": 0.1, "left_hand": 0.0})
        await clock.advance(1.0)  # a jump wider than the tracker follows: it takes them for a new visitor
        assert store.get("body.count").value == 1
        assert store.get("body.nearest.hands_raised").value < 0.05
        assert store.get("body.zone.bridge.count").value == 0
        assert sensor.remove_puppet(puppet) and not sensor.remove_puppet(puppet)
        await clock.advance(1.0)
        assert store.get("body.count").value == 0
        sensor.mute_recording(False)
        await clock.advance(1.0)
        assert store.get("body.count").value == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_without_a_recording_simulated_visitors_come_at_30_fps_and_then_frames_stop():
    clock = VirtualClock()
    sensor, store = make_sensor(clock)
    left: list[object] = []
    store.subscribe("body.leave", lambda signal: left.append(signal.value))
    task = asyncio.create_task(sensor.run())
    try:
        await clock.advance(5.0)
        assert store.get("body.count").value == 0 and sensor.frames == 0  # nobody: no frames ticking
        sensor.add_puppet({"left_hand": 1.0, "right_hand": 1.0})
        await clock.advance(1.0)
        assert store.get("body.count").value == 1
        assert store.get("body.nearest.hands_raised").value > 0.9
        assert 28 <= store.get("body.health.fps").value <= 31
        sensor.remove_puppet(1)
        await clock.advance(2.0)
        assert store.get("body.count").value == 0 and left == [1]
        frames = sensor.frames
        await clock.advance(10.0)
        assert sensor.frames == frames  # idle again: nothing to show
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_faults_reach_the_simulated_visitors_too():
    clock = VirtualClock()
    sensor, store = make_sensor(clock)
    task = asyncio.create_task(sensor.run())
    try:
        sensor.add_puppet({})
        await clock.advance(1.0)
        assert store.get("body.count").value == 1
        sensor.inject("garbage")  # the model trusts nothing it sees
        await clock.advance(1.0)
        assert store.get("body.count").value == 0
        sensor.inject("clear")
        await clock.advance(1.0)
        assert store.get("body.count").value == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_a_pose_sensor_takes_no_more_simulated_visitors_than_it_tracks():
    sensor, _ = make_sensor(VirtualClock(), num_poses=2)
    assert [sensor.add_puppet({}), sensor.add_puppet({"x": 0.3})] == [1, 2]
    with pytest.raises(TooManyPuppets, match=r"at most 2 visitors \(`num_poses`\).* / .*上限"):
        sensor.add_puppet({})
    assert [p["id"] for p in sensor.puppet_list()] == [1, 2]
    assert sensor.remove_puppet(1)
    assert sensor.add_puppet({}) == 3  # room again once one leaves


@pytest.mark.parametrize("muted", [True, False])
def test_landmarks_are_built_for_at_most_num_poses_visitors(monkeypatch: pytest.MonkeyPatch, muted: bool):
    sensor, _ = make_sensor(VirtualClock(), num_poses=2)
    sensor.recording_muted = muted
    for puppet_id in range(1, 9):  # however many there are (a stage filled before the limit)
        sensor.puppets[puppet_id] = Puppet(puppet_id, x=puppet_id / 10)
    built: list[int] = []

    def counting(puppet: Puppet, aspect: float = ASPECT) -> np.ndarray:
        built.append(puppet.id)
        return puppet_landmarks(puppet, aspect)

    monkeypatch.setattr(pose_driver, "puppet_landmarks", counting)
    recorded = (puppet_landmarks(Puppet(99)),)
    people = sensor._people(recorded, 640, 480)
    assert len(people) == 2 and built == [1, 2]


# --- the flagship, simulated ---------------------------------------------------------------------------------


async def test_on_the_flagship_a_simulated_visitor_raising_both_hands_lifts_hands_raised(tmp_path: Path):
    registry = build_registry()
    options = RuntimeOptions(
        simulate=True, base_dir=FLAGSHIP.parent, embedded_port=free_port(), console=False, render="off"
    )
    runtime = assemble(load_exhibit(FLAGSHIP, registry), registry, options)
    await runtime.start()
    try:
        hands = runtime.store.get("body.nearest.hands_raised")
        reply = runtime.control.execute("sim/recording", {"sensor": "body", "muted": True}, ADMIN)
        assert reply.ok, reply
        await asyncio.sleep(1.0)  # the recorded visitors leave
        assert runtime.store.get("body.count").value == 0
        reply = runtime.control.execute(
            "sim/visitor/add", {"sensor": "body", "x": 0.5, "y": 0.9, "left_hand": 1, "right_hand": 1}, ADMIN
        )
        assert reply.ok and reply.data["id"] == 1, reply
        started = time.monotonic()
        while not (math.isfinite(hands.value) and hands.value > 0.8):
            assert time.monotonic() - started < 2.5, f"hands_raised is {hands.value}"
            await asyncio.sleep(0.02)
        assert runtime.store.get("body.zone.bridge.count").value == 1

        state = simulation_state(runtime)
        json.dumps(state, allow_nan=False)
        assert state["pose"] == {
            "body": {
                "muted": True,
                "visitors": [{"id": 1, "x": 0.5, "y": 0.9, "height": 0.5, "left_hand": 1.0, "right_hand": 1.0}],
            }
        }
        controls = {c["name"]: c for c in state["controls"]}
        assert controls["body.nearest.hands_raised"]["control"] == "fader"
        assert controls["body.nearest.hands_raised"]["range"] == [0.0, 1.0]
        assert controls["controls.wash"]["range"] == [0.0, 1.0]
        assert controls["body.wave"]["control"] == "button"
        assert "plinth.estop" not in controls and "venue.estop" not in controls

        reply = runtime.control.execute("sim/visitor/pose", {"id": 1, "left_hand": 0, "right_hand": 0}, ADMIN)
        assert reply.ok, reply
        started = time.monotonic()
        while not hands.value < 0.1:
            assert time.monotonic() - started < 2.5, f"hands_raised is {hands.value}"
            await asyncio.sleep(0.02)
        bad = runtime.control.execute("sim/visitor/pose", {"id": 9, "x": 0.5}, ADMIN)
        assert bad.code == "not_found" and "9" in bad.error
        bad = runtime.control.execute("sim/visitor/add", {"x": 1.5}, ADMIN)
        assert bad.code == "bad_request" and "within [0, 1]" in bad.error
        bad = runtime.control.execute("sim/visitor/add", {"sensor": "bdoy"}, ADMIN)
        assert bad.code == "not_found" and "`body`" in bad.error
        assert runtime.control.execute("sim/visitor/remove", {"id": 1}, ADMIN).data["visitors"] == []
    finally:
        await runtime.stop()
