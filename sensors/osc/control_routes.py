"""Which operator command an OSC address asks for: QLab's own addresses (so a Companion page, a
TouchOSC layout or a QLab network cue made for QLab works unchanged) and the exhibit's own.

==================================  =====================================================
``/go`` ``/stop`` ``/pause``        the command of the same name (``/back`` too)
``/resume`` ``/panic`` ``/reset``
``/playhead/next|previous``         ``playhead/next`` / ``playhead/previous``
``/playhead/<cue>``                 ``playhead {cue}`` (the cue becomes standby)
``/select/<cue>``                   the same (``/select/next|previous`` step)
``/cue/<cue>/start`` (or ``/go``)   ``go {cue}``; ``/cue_id/<cue>/...`` alike
``/exhibit/estop[/reset]``          ``estop`` / ``estop/reset``
``/exhibit/state/<m> <state>``      ``state {machine, state}`` (or ``/exhibit/state/<m>/<state>``)
``/exhibit/var/<name> <value>``     ``var {name, value}``
``/exhibit/cuelist/<list>/...``     any of the cue list addresses above, on that list
``/workspace/<id>/...``             the same without the prefix (``<id>``: the exhibit's id)
==================================  =====================================================

``/cue/<list>/go`` (and the other cue list words) act on the list when ``<list>`` names one, as QLab's
``/cue_id/<list>/go`` does. PANIC, STOP, PAUSE, RESUME and RESET always act on the whole show, even when
sent to one list: a PANIC button set up for one list must never be refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SESSION = frozenset(
    ("connect", "disconnect", "updates", "thump", "version", "workspaces", "udpReplyPort", "alwaysReply", "cueLists")
)
"""Addresses about the client's own session, answered by the service itself."""
WHOLE_SHOW = frozenset(("stop", "pause", "resume", "panic", "reset"))
LIST_WORDS = frozenset(("go", "back"))


@dataclass(frozen=True)
class OscRoute:
    """A command for the controller (``command`` and ``params``) or a session word (``session``)."""

    command: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    session: str = ""


class RouteError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def route(address: str, args: Sequence[Any], exhibit_id: str, lists: Mapping[str, Sequence[str]]) -> OscRoute:
    """The route of one message. ``lists`` holds each cue list's cue ids (empty while no show runs).
    Raises :class:`RouteError` for an address this exhibit does not answer."""
    parts = address.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "workspace":
        if parts[1] != exhibit_id:
            raise RouteError(
                "not_found",
                f"no workspace `{parts[1]}`: this exhibit's is `{exhibit_id}` / 没有该工作区，本展项为 `{exhibit_id}`",
            )
        parts = parts[2:]
    if len(parts) == 1 and parts[0] in SESSION:
        return OscRoute(session=parts[0])
    found = _exhibit(parts[1:], args, lists) if parts[:1] == ["exhibit"] else _list_words(parts, None, lists)
    if found is None:
        raise RouteError("not_found", f"no OSC address `{address}` here / 没有该 OSC 地址")
    return found


def _exhibit(parts: list[str], args: Sequence[Any], lists: Mapping[str, Sequence[str]]) -> OscRoute | None:
    first = _arg(args)
    match parts:
        case ["estop"]:
            return OscRoute("estop")
        case ["estop", "reset"]:
            return OscRoute("estop/reset")
        case ["state", machine]:
            return OscRoute("state", {"machine": machine, "state": first})
        case ["state", machine, state]:
            return OscRoute("state", {"machine": machine, "state": state})
        case ["var", name]:
            return OscRoute("var", {"name": name, "value": first})
        case ["cuelist", cue_list, *rest] if rest:
            return _list_words(rest, cue_list, lists)
    return None


def _list_words(parts: list[str], cue_list: str | None, lists: Mapping[str, Sequence[str]]) -> OscRoute | None:
    """The cue list addresses, on ``cue_list`` (None: the exhibit's one list, or the list holding the cue)."""
    scope = {"cue_list": cue_list} if cue_list is not None else {}
    match parts:
        case [word] if word in WHOLE_SHOW:
            return OscRoute(word)
        case [word] if word in LIST_WORDS:
            return OscRoute(word, dict(scope))
        case ["playhead" | "select", "next" | "previous" as step]:
            return OscRoute(f"playhead/{step}", dict(scope))
        case ["playhead" | "select", cue]:
            return OscRoute("playhead", {"cue": cue, **_where(cue, cue_list, lists)})
        case ["cue" | "cue_id", name, *rest] if cue_list is None and name in lists and rest:
            return _list_words(rest, name, lists)  # QLab's /cue_id/<list>/go: the list's own GO
        case ["cue" | "cue_id", cue, "start" | "go"]:
            return OscRoute("go", {"cue": cue, **_where(cue, cue_list, lists)})
    return None


def _where(cue: str, cue_list: str | None, lists: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """The cue list of ``cue``: the one named, the only one, or the one list that holds it."""
    if cue_list is not None:
        return {"cue_list": cue_list}
    if len(lists) <= 1:
        return {}
    holding = [name for name, cues in lists.items() if cue in cues]
    if len(holding) == 1:
        return {"cue_list": holding[0]}
    if not holding:
        raise RouteError("not_found", f"no cue `{cue}` in any cue list / 没有该提示 `{cue}`")
    raise RouteError(
        "bad_request",
        f"cue `{cue}` is in {', '.join(holding)}: send /exhibit/cuelist/<list>/... / 多个列表含有该提示，请指明列表",
    )


def _arg(args: Sequence[Any]) -> Any:
    return args[0] if args else None
