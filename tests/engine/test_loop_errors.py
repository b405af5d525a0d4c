"""The run's loop error handler: a socket registered after it closed (aiomqtt's writer at the end of a run) is
not a traceback on the operator's terminal; every other error still is."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from engine.session import quiet_late_registrations


async def test_a_registration_after_the_socket_closed_is_quiet_and_other_errors_are_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(quiet_late_registrations)
    try:
        with caplog.at_level(logging.DEBUG):
            left, right = socket.socketpair()
            loop.call_soon(loop.add_writer, left.fileno(), lambda: None)  # as aiomqtt does, from paho's callback
            left.close()
            right.close()
            await asyncio.sleep(0.01)
            assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
            assert "a socket closed before its registration ran" in caplog.text

            def broken() -> None:
                raise RuntimeError("a real bug")

            loop.call_soon(broken)
            await asyncio.sleep(0.01)
            assert [r for r in caplog.records if (r.levelno >= logging.ERROR and "a real bug" in r.getMessage())
                    or (r.exc_info and "a real bug" in str(r.exc_info[1]))]  # fmt: skip
    finally:
        loop.set_exception_handler(previous)
