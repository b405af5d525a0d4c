"""Console WebSocket clients watching live plots, as tablets in a gallery would: a child process of the console bench.

    python console_clients.py --url WSURL --token TOKEN --clients 20 --signals a.b,c.d

Each client opens the console's WebSocket with the API token, waits for ``hello``, sends
``{"op": "watch", "signals": [...]}`` and reads every message, parsing it as a page would. Prints ``ready``
once every client has a first value of every signal it watches. A line on stdin (or its end) closes them; it
then prints one JSON line, ``{"messages", "events", "fewest", "seconds", "cpu_s"}``: WebSocket messages and the
events in them received by all clients since ``ready``, the fewest events one client got, the seconds since
``ready`` and this process's CPU seconds over them, and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import aiohttp

READY_S = 20.0


class Watcher:
    def __init__(self, signals: list[str]) -> None:
        self.waiting = {f"signal/{name}" for name in signals}
        self.ready = asyncio.Event()
        self.messages = 0
        self.events = 0

    def take(self, payload: Any) -> None:
        events = payload if isinstance(payload, list) else [payload]
        self.messages += 1
        self.events += len(events)
        if self.waiting:
            for event in events:
                if isinstance(event, dict):
                    self.waiting.discard(str(event.get("topic")))
            if not self.waiting:
                self.ready.set()


async def watch(session: aiohttp.ClientSession, args: argparse.Namespace, watcher: Watcher) -> None:
    headers = {"Authorization": f"Bearer {args.token}"}
    async with session.ws_connect(args.url, headers=headers, max_msg_size=0) as ws:
        await ws.send_str(json.dumps({"op": "watch", "signals": args.signals}))
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                watcher.take(json.loads(message.data))
            elif message.type == aiohttp.WSMsgType.ERROR:
                raise RuntimeError(f"the WebSocket failed: {ws.exception()}")


async def main(args: argparse.Namespace) -> None:
    watchers = [Watcher(args.signals) for _ in range(args.clients)]
    async with aiohttp.ClientSession() as session:
        tasks = [asyncio.create_task(watch(session, args, watcher)) for watcher in watchers]
        ready: asyncio.Future[Any] = asyncio.gather(*(watcher.ready.wait() for watcher in watchers))
        waiting: set[asyncio.Future[Any]] = {ready, *tasks}
        done, _ = await asyncio.wait(waiting, timeout=READY_S, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            for task in done:
                task.result()  # a client that failed says why
            missing = sorted(set().union(*(watcher.waiting for watcher in watchers)))
            sys.exit(f"console_clients: not every client had {', '.join(missing)} within {READY_S:.0f} s")
        for watcher in watchers:
            watcher.messages = watcher.events = 0
        started, cpu = time.monotonic(), time.process_time()
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        seconds, cpu_s = time.monotonic() - started, time.process_time() - cpu
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    report = {
        "messages": sum(watcher.messages for watcher in watchers),
        "events": sum(watcher.events for watcher in watchers),
        "fewest": min(watcher.events for watcher in watchers),
        "seconds": seconds,
        "cpu_s": cpu_s,
    }
    print(json.dumps(report), flush=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="the console's WebSocket, http://HOST:PORT/api/v1/ws")
    parser.add_argument("--token", required=True, help="an API token (Authorization: Bearer)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--signals", type=lambda text: [s for s in text.split(",") if s], required=True)
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
