#!/usr/bin/env python3
"""The exhibit controller's command line (also installed as ``exhibit``).

    exhibit check EXHIBIT...      validate (exit 0 valid, 2 invalid)
    exhibit run EXHIBIT           run it (--broker, --duration, --headless, --simulate, --no-render)
    exhibit shot EXHIBIT --out F  render its scene offscreen with simulated visitors (--at, --size)
    exhibit schema                regenerate exhibits/exhibit.schema.json
    exhibit list                  the exhibits under exhibits/
    exhibit models [--install]    pose models: list them, install official ones
    exhibit record --camera|--video --out FILE   a landmark-only recording
    exhibit bench [--json]        performance figures against a baseline

This module wires the engine to the concrete drivers; the engine itself never
imports them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import content
import devices
import sensors
from content.service import SceneService
from content.snapshot_source import SnapshotSource
from devices.mqtt.broker import EmbeddedBroker, free_port
from devices.mqtt.link import MqttLink, Topics
from devices.mqtt.security import SecretMissing
from engine.drivers import Resources, Service
from engine.errors import UserError
from engine.exhibit import ExhibitBase
from engine.logs import setup_logging
from engine.model import parse_broker_url
from engine.problems import ExhibitInvalid
from engine.registry import Registry
from engine.reload import ExhibitWatcher
from engine.runtime import Runtime, RuntimeOptions
from engine.schema import schema_text
from engine.validate import EXHIBIT_FILE, load_exhibit, resolve_exhibit_path
from sensors.pose.types import FrameTaps

ROOT = Path(__file__).resolve().parent
EXHIBITS = ROOT / "exhibits"
SCHEMA_PATH = EXHIBITS / "exhibit.schema.json"

log = logging.getLogger("launcher")

RenderMode = Literal["window", "offscreen", "off"]


def build_registry() -> Registry:
    registry = Registry()
    sensors.register(registry)
    devices.register(registry)
    content.register(registry)
    return registry


def cmd_check(args: argparse.Namespace) -> int:
    registry = build_registry()
    status = 0
    for spec in args.exhibits:
        path = resolve_exhibit_path(spec, EXHIBITS)
        try:
            exhibit = load_exhibit(path, registry, hardware=args.hardware)
        except ExhibitInvalid as invalid:
            for problem in invalid.problems:
                print(problem, file=sys.stderr)
            count = len(invalid.problems)
            print(f"{path}: {count} problem{'s' if count != 1 else ''}; nothing was started.", file=sys.stderr)
            status = 2
        else:
            print(
                f"{path}: ok ({exhibit.id}: {len(exhibit.sensors)} sensors, "
                f"{len(exhibit.devices)} devices, {len(exhibit.mappings)} mappings)"
            )
    return status


def cmd_run(args: argparse.Namespace) -> int:
    path = resolve_exhibit_path(args.exhibit, EXHIBITS)
    exhibit = load_exhibit(path, build_registry())
    broker_url = args.broker or exhibit.mqtt.broker
    embedded: EmbeddedBroker | None = None
    if broker_url == "embedded":
        embedded = EmbeddedBroker(port=args.embedded_port)
        embedded.start()
        host, port = embedded.host, embedded.port
    else:
        try:
            host, port = parse_broker_url(broker_url)
        except ValueError as exc:
            raise UserError(f"The broker address is not valid: {exc}.") from None
    args.base_dir = path.parent
    args.exhibit_path = path
    try:
        asyncio.run(run_exhibit(exhibit, host, port, args))
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def build_runtime(
    exhibit: ExhibitBase,
    registry: Registry,
    host: str,
    port: int,
    options: RuntimeOptions,
    render: RenderMode = "off",
) -> tuple[Runtime, MqttLink]:
    """The exhibit's runtime with its one MQTT link (and topic scheme) shared by the devices, and its
    scene's render process unless ``render`` is off."""
    topics = Topics(exhibit.mqtt.prefix, exhibit.id)
    try:
        link = MqttLink(
            host,
            port,
            client_id=exhibit.mqtt.client_id or f"exhibit-{exhibit.id}",
            topics=topics,
            keepalive=exhibit.mqtt.keepalive,
            security=exhibit.mqtt.security,
            security_base=options.base_dir,
        )
    except SecretMissing as exc:
        raise UserError(f"The MQTT settings cannot be used: {exc}") from None
    resources = Resources()
    resources.put(link)
    resources.put(topics)
    services: list[Service] = [link]
    scene = getattr(exhibit, "scene", None)
    drawing: SceneService | None = None
    pose_sensors = [name for name, config in exhibit.sensors.items() if config.kind == "pose"]
    if scene is not None and (problems := scene.check_sensors(pose_sensors)):
        where = "; ".join(f"scene.{'.'.join(map(str, path))}: {message}" for path, message in problems)
        raise UserError(f"The scene names a sensor that is not a pose sensor: {where}.")
    if render != "off" and scene is not None:
        drawing = SceneService(scene, options.base_dir or Path.cwd(), pose_sensors, offscreen=render == "offscreen")
        services.append(drawing)
        if drawing.frame_writer is not None:
            # AR mirror: the mirrored pose sensor's frames go to the render process through shared
            # memory; no other sensor gets a tap, and without a scene to draw nobody does.
            resources.put(FrameTaps({scene.mirror.sensor: drawing.frame_writer.write}))
    runtime = Runtime(exhibit, registry, resources, services=services, options=options)
    if drawing is not None:
        drawing.attach(runtime.store, runtime.clock)
    return runtime, link


async def run_exhibit(exhibit: ExhibitBase, host: str, port: int, args: argparse.Namespace) -> None:
    registry = build_registry()
    options = RuntimeOptions(simulate=args.simulate, base_dir=args.base_dir)
    runtime, _link = build_runtime(exhibit, registry, host, port, options, render_mode(args))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await runtime.start()
    if not args.no_reload:
        watcher = ExhibitWatcher(args.exhibit_path, registry, runtime, runtime.clock)
        runtime.supervisor.start("reload", watcher.run)
    try:
        await asyncio.wait_for(stop.wait(), timeout=args.duration)
        log.info("stop requested")
    except TimeoutError:
        log.info("ran for the requested %.1f s", args.duration)
    await runtime.stop()


def render_mode(args: argparse.Namespace) -> RenderMode:
    """A window where there is a display; offscreen with --headless or without one (servers, CI)."""
    if args.no_render:
        return "off"
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or sys.platform != "linux"
    return "offscreen" if args.headless or not has_display else "window"


def cmd_shot(args: argparse.Namespace) -> int:
    path = resolve_exhibit_path(args.exhibit, EXHIBITS)
    registry = build_registry()
    exhibit = load_exhibit(path, registry)
    if getattr(exhibit, "scene", None) is None:
        raise UserError(f"{path} has no `scene:` to take a picture of.")
    size = parse_size(args.size) if args.size else None
    embedded = EmbeddedBroker(port=free_port())  # the simulated show drives its devices somewhere private
    embedded.start()
    try:
        frame = asyncio.run(take_shot(exhibit, registry, path.parent, embedded, args.at, size))
    finally:
        embedded.stop()
    from content.offscreen import save_png

    save_png(frame, Path(args.out))
    print(f"wrote {args.out}: {frame.shape[1]}x{frame.shape[0]}, {args.at:g} s into the simulated exhibit")
    return 0


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise UserError(f"The size `{text}` is not WIDTHxHEIGHT, e.g. 1280x720.") from None
    return width, height


async def take_shot(
    exhibit: ExhibitBase,
    registry: Registry,
    base: Path,
    broker: EmbeddedBroker,
    at: float,
    size: tuple[int, int] | None,
) -> Any:
    """Run the exhibit with simulated visitors for ``at`` seconds, then render its scene as it is then."""
    scene = exhibit.scene  # type: ignore[attr-defined]
    options = RuntimeOptions(simulate=True, base_dir=base)
    runtime, _link = build_runtime(exhibit, registry, broker.host, broker.port, options)
    await runtime.start()
    try:
        await asyncio.sleep(at)
        pose_sensors = [name for name, config in exhibit.sensors.items() if config.kind == "pose"]
        snapshot = SnapshotSource(runtime.store, runtime.clock, pose_sensors).take()
    finally:
        await runtime.stop()
    from content.renderer import SceneRenderer  # Panda3D: only for the commands that draw

    with SceneRenderer(scene, base, size=size or scene.outputs[0].size, offscreen=True) as renderer:
        renderer.frame(snapshot)
        return renderer.capture()


def cmd_schema(args: argparse.Namespace) -> int:
    text = schema_text(build_registry())
    if args.check:
        if not SCHEMA_PATH.is_file() or SCHEMA_PATH.read_text(encoding="utf-8") != text:
            print(f"{SCHEMA_PATH} is out of date; run `python launcher.py schema`.", file=sys.stderr)
            return 1
        print(f"{SCHEMA_PATH} is up to date.")
        return 0
    SCHEMA_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    registry = build_registry()
    folders = sorted(p.parent for p in EXHIBITS.glob(f"*/{EXHIBIT_FILE}"))
    if not folders:
        print(f"No exhibits under {EXHIBITS}.")
    for folder in folders:
        try:
            exhibit = load_exhibit(folder / EXHIBIT_FILE, registry)
        except ExhibitInvalid as invalid:
            print(f"{folder.name:24} INVALID ({len(invalid.problems)} problems; run `check {folder.name}`)")
            continue
        title = exhibit.title.en + (f" / {exhibit.title.zh}" if exhibit.title.zh else "")
        print(f"{folder.name:24} {title}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from sensors.pose import models

    for name in args.install or []:
        path = models.install(name)
        print(f"installed {name}: {path}")
    print(f"{'model':8} {'origin':10} {'MB':>6}  path")
    for info in models.available():
        print(f"{info.name:8} {info.origin:10} {info.size_mb:6.1f}  {info.path}")
    print(f"official bundles install into {models.user_dir()} (`models --install lite|full|heavy`, needs internet)")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from sensors.pose import models
    from sensors.pose.inference import PoseEstimator
    from sensors.pose.record import record
    from sensors.pose.sources import CameraSource, FrameSource, SourceLost, VideoFileSource

    source: FrameSource
    if args.video is not None:
        if not Path(args.video).is_file():
            raise UserError(f"The video file `{args.video}` does not exist.")
        source = VideoFileSource(Path(args.video), loop=False, realtime=False)
    else:
        camera = int(args.camera) if str(args.camera).isdigit() else args.camera
        source = CameraSource(camera)
    estimator = PoseEstimator(models.resolve(args.model), num_poses=args.num_poses)
    try:
        stats = record(source, estimator, Path(args.out), duration=args.duration, max_frames=args.frames)
    except SourceLost as exc:
        raise UserError(f"Nothing was recorded: {exc}.") from None
    finally:
        estimator.close()
    print(f"wrote {args.out}: {stats.frames} frames ({stats.frames_with_people} with people), landmarks only")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))
    from tests.bench.runner import main as bench_main

    return bench_main(json_output=args.json, quick=args.quick)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="exhibit", description="Immersive exhibit controller.")
    top.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    top.add_argument("--log-format", default="text", choices=["text", "json"])
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="validate exhibit files (exit 0 valid, 2 invalid)")
    check.add_argument("exhibits", nargs="+", metavar="EXHIBIT", help="folder, exhibit.yaml, or name under exhibits/")
    check.add_argument("--hardware", action="store_true", help="also check that the cameras it names exist here")
    check.set_defaults(handler=cmd_check)

    run = commands.add_parser("run", help="run an exhibit until SIGINT/SIGTERM or --duration")
    run.add_argument("exhibit", metavar="EXHIBIT")
    run.add_argument(
        "--broker",
        metavar="URL",
        help="mqtt://host:port of a real broker (default: the exhibit's `mqtt.broker`, normally the embedded one)",
    )
    run.add_argument("--duration", type=float, metavar="SECONDS", help="stop cleanly after this long")
    run.add_argument("--headless", action="store_true", help="never open a window (for servers and CI)")
    run.add_argument("--simulate", action="store_true", help="simulated sensors instead of hardware")
    run.add_argument("--no-reload", action="store_true", help="do not reload the exhibit file when it changes")
    run.add_argument("--no-render", action="store_true", help="do not draw the exhibit's scene (control only)")
    run.add_argument(
        "--embedded-port",
        type=int,
        default=1883,
        metavar="PORT",
        help="port of the embedded broker (a free one is used if it is taken)",
    )
    run.set_defaults(handler=cmd_run)

    shot = commands.add_parser("shot", help="render the exhibit's scene offscreen with simulated visitors to a PNG")
    shot.add_argument("exhibit", metavar="EXHIBIT")
    shot.add_argument("--out", required=True, metavar="FILE.png", help="where to write the picture")
    shot.add_argument("--at", type=float, default=5.0, metavar="SECONDS", help="how far into the exhibit (default 5)")
    shot.add_argument("--size", metavar="WxH", help="picture size (default: the scene's first output)")
    shot.set_defaults(handler=cmd_shot)

    schema = commands.add_parser("schema", help=f"write {SCHEMA_PATH.relative_to(ROOT)}")
    schema.add_argument("--check", action="store_true", help="only check that it is up to date")
    schema.set_defaults(handler=cmd_schema)

    listing = commands.add_parser("list", help="list the exhibits under exhibits/")
    listing.set_defaults(handler=cmd_list)

    model_list = commands.add_parser("models", help="list pose models; install the official ones")
    model_list.add_argument(
        "--install",
        nargs="+",
        choices=["lite", "full", "heavy"],
        metavar="NAME",
        help="download official bundles (lite, full, heavy) into the user model folder",
    )
    model_list.set_defaults(handler=cmd_models)

    rec = commands.add_parser("record", help="record landmarks (never images) from a camera or a video")
    where = rec.add_mutually_exclusive_group(required=True)
    where.add_argument("--camera", help="camera index or device path")
    where.add_argument("--video", help="video file")
    rec.add_argument("--out", required=True, help="recording file (.jsonl or .jsonl.gz)")
    rec.add_argument("--duration", type=float, help="seconds to record")
    rec.add_argument("--frames", type=int, help="frames to record")
    rec.add_argument("--num-poses", type=int, default=4, help="most people per frame")
    rec.add_argument("--model", default="full", help="lite, full, heavy or a .task file")
    rec.set_defaults(handler=cmd_record)

    bench = commands.add_parser("bench", help="measure performance figures against baselines")
    bench.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    bench.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    bench.set_defaults(handler=cmd_bench)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    try:
        return int(args.handler(args))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ExhibitInvalid as invalid:
        for problem in invalid.problems:
            print(problem, file=sys.stderr)
        print("The exhibit is not valid; nothing was started.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
