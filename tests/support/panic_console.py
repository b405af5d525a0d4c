"""``exhibit run`` with an operator's PANIC button: a true/false input signal wired to ``Show.panic``.

The exhibit format has no `panic` action and the controller offers no OSC/MQTT control API yet, so a
running ``launcher.py run`` cannot be PANICked from outside at all. This is the same run (the same
:func:`engine.session.serve`, the same runtime, signals and devices) with the one thing the README's
"console and OSC/MQTT control APIs" would add: a signal (an MQTT or OSC input of the exhibit) whose
rising edge calls :meth:`engine.show.Show.panic`, as an operator's console would.

    python -m tests.support.panic_console run EXHIBIT --broker URL --panic-on console.panic
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from engine.logs import setup_logging
from engine.runtime import Runtime, RuntimeOptions
from engine.session import Companion, serve
from engine.signals import Signal
from engine.validate import load_exhibit
from launcher import build_registry

log = logging.getLogger("tests.panic_console")


def panic_button(name: str) -> Companion:
    async def console(runtime: Runtime, stop: asyncio.Event) -> None:
        def pressed(signal: Signal) -> None:
            if signal.stale or signal.value is not True or runtime.show is None:
                return
            log.warning("operator PANIC from %s", name)
            runtime.show.panic()

        unbind = runtime.store.subscribe(name, pressed)
        try:
            await asyncio.Event().wait()
        finally:
            unbind()

    return console


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["run"])
    parser.add_argument("exhibit", type=Path)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--panic-on", required=True, metavar="SIGNAL")
    parser.add_argument("--no-render", action="store_true")
    parser.add_argument("--no-reload", action="store_true")
    args = parser.parse_args()
    setup_logging("info")
    registry = build_registry()
    exhibit = load_exhibit(args.exhibit, registry)
    options = RuntimeOptions(base_dir=args.exhibit.parent, broker=args.broker, render="off")
    asyncio.run(serve(exhibit, registry, options, companion=panic_button(args.panic_on)))


if __name__ == "__main__":
    main()
