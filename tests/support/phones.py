"""Many phones on the audience page, from one process: real WebSocket clients, each tapping at its own pace and
counting what it sent (``python -m tests.support.phones URL --phones 250 --rate 2 --seconds 20``). Prints one JSON
line: ``{"connected", "sent", "refused", "dropped_by_server", "errors"}``. Used by the load test and the bench,
several processes at once (one Python process holds a few hundred sockets at 2 taps a second easily)."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time

import aiohttp


async def phone(
    session: aiohttp.ClientSession, url: str, rate: float, until: float, offer: str, vote: str | None, tally: dict
) -> None:
    try:
        ws = await session.ws_connect(url, heartbeat=None)
    except (aiohttp.ClientError, OSError):
        tally["errors"] += 1
        return
    hello = json.loads((await ws.receive()).data)
    if hello.get("t") == "full":
        tally["refused"] += 1
        await ws.close()
        return
    tally["connected"] += 1
    rng = random.Random()
    try:
        if vote is not None:
            choices = next(o for o in hello["offers"] if o["id"] == vote)["choices"]
            await ws.send_str(json.dumps({"t": "vote", "id": vote, "choice": rng.choice(choices)["id"]}))
        await asyncio.sleep(rng.uniform(0, 1 / rate))  # phones are not in step
        while time.monotonic() < until:
            await ws.send_str(json.dumps({"t": "tap", "id": offer}))
            tally["sent"] += 1
            await asyncio.sleep(rng.expovariate(rate) if rng.random() < 0.5 else 1 / rate)
    except (aiohttp.ClientError, ConnectionResetError, RuntimeError):
        tally["errors"] += 1
    finally:
        await ws.close()


async def crowd(url: str, phones: int, rate: float, seconds: float, offer: str, vote: str | None) -> dict:
    tally = {"connected": 0, "sent": 0, "refused": 0, "errors": 0}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        until = time.monotonic() + seconds
        tasks = []
        for _ in range(phones):  # they arrive over the first seconds, not all in one instant
            tasks.append(asyncio.create_task(phone(session, url, rate, until, offer, vote, tally)))
            await asyncio.sleep(0.002)
        await asyncio.gather(*tasks)
    return tally


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url", help="the WebSocket, ws://host:port/ws")
    parser.add_argument("--phones", type=int, default=250)
    parser.add_argument("--rate", type=float, default=2.0, help="taps a second, each phone")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--offer", default="lantern")
    parser.add_argument("--vote", help="each phone votes once in this vote, at random")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(crowd(args.url, args.phones, args.rate, args.seconds, args.offer, args.vote))))


if __name__ == "__main__":
    main()
