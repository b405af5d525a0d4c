"""Subscribe to a topic or filter (QoS 1) and save when each message arrived.

    python subscriber.py --port MQTTPORT --topic TOPIC --out RECV.npy [--fixtures]

Prints ``ready`` once the broker has acknowledged the subscription. A line on stdin (or its end)
means "the sender is done": it then waits for the stream to go quiet, saves an int64 array and exits:

* by default, rows ``(value, monotonic_ns)`` for each ``{"value": N}`` (the latency benches);
* with ``--fixtures``, rows ``(monotonic_ns, fixture, safe)`` for every message (the fan-out bench):
  ``fixture`` is N of the topic level ``fN`` (-1 if none), ``safe`` is 1 when the payload is a JSON
  object with ``"level": 0``, else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt

QUIET_S = 0.3
"""The stream counts as drained after this long without a message."""
DRAIN_LIMIT_S = 10.0
FIXTURE = re.compile(r"/f(\d+)/")


class Recorder:
    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.ready = threading.Event()
        self.arrivals: list[tuple[int, str, bytes | bytearray]] = []
        """(monotonic_ns, topic, payload), parsed only at the end to keep the callback short."""

    def on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        client.subscribe(self.topic, qos=1)

    def on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        self.ready.set()

    def on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.arrivals.append((time.monotonic_ns(), message.topic, message.payload))

    def last_arrival_ns(self) -> int:
        return self.arrivals[-1][0] if self.arrivals else 0

    def values(self) -> np.ndarray:
        rows = []
        for at, _, payload in self.arrivals:
            try:
                value = json.loads(payload)["value"]
            except (ValueError, KeyError, TypeError):
                continue  # not a command of ours
            if isinstance(value, int | float):
                rows.append((round(value), at))
        return np.array(rows, dtype=np.int64).reshape(-1, 2)

    def fixtures(self) -> np.ndarray:
        rows = []
        for at, topic, payload in self.arrivals:
            match = FIXTURE.search(topic)
            fixture = int(match.group(1)) if match else -1
            try:
                data = json.loads(payload)
            except ValueError:
                data = None
            safe = isinstance(data, dict) and data.get("level") == 0
            rows.append((at, fixture, int(safe)))
        return np.array(rows, dtype=np.int64).reshape(-1, 3)


def wait_for_quiet(recorder: Recorder) -> None:
    limit = time.monotonic() + DRAIN_LIMIT_S
    while time.monotonic() < limit:
        if time.monotonic_ns() - recorder.last_arrival_ns() >= QUIET_S * 1e9:
            return
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--out", required=True, help="where to save the rows (.npy)")
    parser.add_argument("--fixtures", action="store_true", help="(monotonic_ns, fixture, safe) rows of every message")
    args = parser.parse_args()

    recorder = Recorder(args.topic)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{os.getpid()}")
    client.max_queued_messages_set(0)
    client.on_connect = recorder.on_connect
    client.on_subscribe = recorder.on_subscribe
    client.on_message = recorder.on_message
    client.connect(args.host, args.port)
    client.loop_start()  # network thread; the main thread only waits
    try:
        if not recorder.ready.wait(10.0):
            sys.exit("subscriber: no SUBACK from the broker within 10 s")
        print("ready", flush=True)
        sys.stdin.readline()
        wait_for_quiet(recorder)
    finally:
        client.disconnect()
        client.loop_stop()
    np.save(args.out, recorder.fixtures() if args.fixtures else recorder.values())


if __name__ == "__main__":
    main()
