"""``exhibit site``: the nodes of a show network as their retained announcements say, read from the broker by a
short-lived client; and ``exhibit site go``: a synced GO sent from the command line (site time is read from the
reference node by a few clock round trips first)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from typing import Any

import aiomqtt

from devices.mqtt.security import resolve_credentials
from devices.site.clock_sync import ClockSync
from devices.site.topics import SiteTopics
from engine.model import MqttSecurity

LISTEN = 1.5
"""Seconds to collect retained announcements (they come at once; a little longer for a busy broker)."""


def client(host: str, port: int, identifier: str, security: MqttSecurity | None) -> aiomqtt.Client:
    """A short-lived client, logged in as the site's broker requires (user name, password from a file or the
    environment, TLS): the same settings an exhibit file's ``mqtt.security`` takes."""
    username, password, tls = resolve_credentials(security) if security else (None, None, None)
    return aiomqtt.Client(host, port, identifier=identifier, username=username, password=password, tls_context=tls)


async def read_nodes(
    host: str, port: int, prefix: str, listen: float = LISTEN, security: MqttSecurity | None = None
) -> dict[str, dict[str, Any]]:
    """Every node's announcement, with ``online`` from its status topic."""
    topics = SiteTopics(prefix, "-", "-")
    nodes: dict[str, dict[str, Any]] = {}
    async with client(host, port, f"exhibit-site-{os.getpid()}", security) as session:
        await session.subscribe(topics.all_info, qos=1)
        await session.subscribe(topics.all_status, qos=1)
        try:
            async with asyncio.timeout(listen):
                async for message in session.messages:
                    node = topics.node_of(message.topic.value)
                    payload = bytes(message.payload or b"").decode()
                    entry = nodes.setdefault(node, {"node": node})
                    if message.topic.value.endswith("/status"):
                        entry["online"] = payload == "online"
                    elif payload:
                        try:
                            entry.update(json.loads(payload))
                        except ValueError:
                            entry["problems"] = ["unreadable announcement"]
        except TimeoutError:
            pass
    return nodes


async def read_analytics(
    host: str, port: int, mqtt_prefix: str, listen: float = LISTEN, security: MqttSecurity | None = None
) -> dict[str, dict[str, Any]]:
    """Every exhibit's retained ``<prefix>/<id>/analytics/today``, by exhibit id."""
    found: dict[str, dict[str, Any]] = {}
    async with client(host, port, f"exhibit-site-analytics-{os.getpid()}", security) as session:
        await session.subscribe(f"{mqtt_prefix}/+/analytics/today", qos=1)
        try:
            async with asyncio.timeout(listen):
                async for message in session.messages:
                    try:
                        data = json.loads(bytes(message.payload or b""))
                    except ValueError:
                        continue
                    if isinstance(data, dict):
                        found[message.topic.value.split("/")[-3]] = data
        except TimeoutError:
            pass
    return found


def table(nodes: dict[str, dict[str, Any]]) -> str:
    """The nodes as an aligned table, one line each."""
    header = ("NODE", "EXHIBIT", "ROLE", "MODE", "EPOCH", "HEALTH", "CLOCK", "VERSION", "FILE", "ONLINE")
    rows = [header]
    for name, n in sorted(nodes.items()):
        health = str(n.get("health", "?"))
        if n.get("problems"):
            health += " (" + "; ".join(map(str, n["problems"])) + ")"
        offset = n.get("clock_offset_ms")
        rows.append(
            (
                name,
                str(n.get("exhibit", "?")),
                str(n.get("role", "?")),
                str(n.get("mode", "?")) + (" *" if n.get("driving") and n.get("role") != "alone" else ""),
                str(n.get("epoch", "-")),
                health,
                "-" if offset is None else f"{float(offset):+.1f} ms",
                str(n.get("version", "?")),
                str(n.get("file_hash", ""))[:12],
                "yes" if n.get("online") else "no",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)


async def send_go(
    host: str,
    port: int,
    prefix: str,
    nodes: list[str],
    cue_list: str | None,
    cue: str | None,
    lead: float,
    security: MqttSecurity | None = None,
) -> dict[str, Any]:
    """A synced GO: site time is taken from the reference node (the first online node by name) by a few round
    trips, then the cue is sent with its start ``lead`` seconds ahead; returns the command and what each node
    reported (when it started, how late)."""
    known = await read_nodes(host, port, prefix, listen=1.0, security=security)
    online = sorted(name for name, n in known.items() if n.get("online"))
    if not online:
        raise LookupError("no node of the site is online")
    me = f"cli-{os.getpid()}"
    topics = SiteTopics(prefix, "-", me)
    reference = online[0]
    clock = ClockSync()
    command_id = secrets.token_hex(6)
    reports: list[dict[str, Any]] = []
    targets = online if "*" in nodes else [n for n in nodes if n in known]
    async with client(host, port, me, security) as session:
        await session.subscribe(topics.node_topic("pong"), qos=0)
        await session.subscribe(f"{prefix}/nodes/+/fired", qos=1)
        everyone = asyncio.Event()
        reader = asyncio.create_task(_read(session, clock, command_id, reports, len(targets), everyone))
        for _ in range(5):
            ping = json.dumps({"from": me, "t0": time.time()})
            await session.publish(topics.node_topic("ping", reference), ping, qos=0)
            await asyncio.sleep(0.05)
        offset = clock.offsets().get(reference, 0.0)
        command = {
            "id": command_id,
            "nodes": nodes,
            "cue_list": cue_list,
            "cue": cue,
            "start_at": time.time() + offset + lead,
            "from": me,
        }
        await session.publish(topics.cue, json.dumps(command), qos=1)
        try:
            async with asyncio.timeout(lead + 3.0):
                await everyone.wait()
        except TimeoutError:
            pass
        reader.cancel()
    return {"command": command, "reference": reference, "offset_ms": round(offset * 1000, 2), "reports": reports}


async def _read(
    session: aiomqtt.Client,
    clock: ClockSync,
    command_id: str,
    reports: list[dict[str, Any]],
    expected: int,
    everyone: asyncio.Event,
) -> None:
    async for message in session.messages:
        arrived = time.time()
        try:
            data = json.loads(bytes(message.payload or b""))
        except ValueError:
            continue
        if message.topic.value.endswith("/pong"):
            try:
                clock.answered(str(data["from"]), float(data["t0"]), float(data["t1"]), arrived)
            except (KeyError, TypeError, ValueError):
                continue
        elif data.get("id") == command_id:
            reports.append(data)
            if len(reports) >= expected:
                everyone.set()
