"""The baseline: the obvious few-line OSC-to-MQTT bridge (python-osc server, aiomqtt publish).

    python baseline_bridge.py --osc-port UDPPORT --mqtt-port MQTTPORT

Prints ``ready`` once connected and listening; runs until it is terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import aiomqtt
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import AsyncIOOSCUDPServer

TOPIC = "bench/baseline/set"


async def bridge(osc_port: int, mqtt_port: int) -> None:
    async with aiomqtt.Client("127.0.0.1", mqtt_port) as client:
        loop = asyncio.get_running_loop()
        in_flight: set[asyncio.Task[None]] = set()  # a reference, so a pending publish is not garbage-collected

        def forward(address: str, x: float) -> None:
            task = loop.create_task(client.publish(TOPIC, json.dumps({"value": round(x)}), qos=1))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)

        dispatcher = Dispatcher()
        dispatcher.map("/bench/seq", forward)
        server = AsyncIOOSCUDPServer(("127.0.0.1", osc_port), dispatcher, loop)  # type: ignore[arg-type]
        transport, _ = await server.create_serve_endpoint()
        print("ready", flush=True)
        try:
            await asyncio.Future()  # forever
        finally:
            transport.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--osc-port", type=int, required=True)
    parser.add_argument("--mqtt-port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(bridge(args.osc_port, args.mqtt_port))


if __name__ == "__main__":
    main()
