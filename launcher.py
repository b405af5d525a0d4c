#!/usr/bin/env python3
"""The exhibit controller's command line (also installed as ``exhibit``).

    exhibit check EXHIBIT...      validate (exit 0 valid, 2 invalid)
    exhibit run EXHIBIT           run it (--broker, --duration, --headless, --simulate)
    exhibit schema                regenerate exhibits/exhibit.schema.json
    exhibit list                  the exhibits under exhibits/
    exhibit bench [--json]        performance figures against a baseline

This module wires the engine to the concrete drivers; the engine itself never
imports them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import devices
import sensors
from devices.embedded_broker import EmbeddedBroker
from devices.mqtt_link import MqttLink, Topics
from engine.drivers import Resources
from engine.errors import UserError
from engine.logs import setup_logging
from engine.model import ExhibitBase, parse_broker_url
from engine.problems import ExhibitInvalid
from engine.registry import Registry
from engine.runtime import Runtime, RuntimeOptions
from engine.schema import schema_text
from engine.validate import EXHIBIT_FILE, load_exhibit, resolve_exhibit_path

ROOT = Path(__file__).resolve().parent
EXHIBITS = ROOT / "exhibits"
SCHEMA_PATH = EXHIBITS / "exhibit.schema.json"

log = logging.getLogger("launcher")


def build_registry() -> Registry:
    registry = Registry()
    sensors.register(registry)
    devices.register(registry)
    return registry


def cmd_check(args: argparse.Namespace) -> int:
    registry = build_registry()
    status = 0
    for spec in args.exhibits:
        path = resolve_exhibit_path(spec, EXHIBITS)
        try:
            exhibit = load_exhibit(path, registry)
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
    try:
        asyncio.run(run_exhibit(exhibit, host, port, args))
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


async def run_exhibit(exhibit: ExhibitBase, host: str, port: int, args: argparse.Namespace) -> None:
    registry = build_registry()
    topics = Topics(exhibit.mqtt.prefix, exhibit.id)
    link = MqttLink(
        host,
        port,
        client_id=exhibit.mqtt.client_id or f"exhibit-{exhibit.id}",
        topics=topics,
        keepalive=exhibit.mqtt.keepalive,
    )
    resources = Resources()
    resources.put(link)
    resources.put(topics)
    runtime = Runtime(exhibit, registry, resources, services=[link], options=RuntimeOptions(simulate=args.simulate))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await runtime.start()
    try:
        await asyncio.wait_for(stop.wait(), timeout=args.duration)
        log.info("stop requested")
    except TimeoutError:
        log.info("ran for the requested %.1f s", args.duration)
    await runtime.stop()


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
    run.add_argument(
        "--embedded-port",
        type=int,
        default=1883,
        metavar="PORT",
        help="port of the embedded broker (a free one is used if it is taken)",
    )
    run.set_defaults(handler=cmd_run)

    schema = commands.add_parser("schema", help=f"write {SCHEMA_PATH.relative_to(ROOT)}")
    schema.add_argument("--check", action="store_true", help="only check that it is up to date")
    schema.set_defaults(handler=cmd_schema)

    listing = commands.add_parser("list", help="list the exhibits under exhibits/")
    listing.set_defaults(handler=cmd_list)

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
