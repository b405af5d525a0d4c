"""What of a running show an operator would not want to lose, as plain data: the e-stop latch, the motion
devices that were armed, each cue list's standby cue, the state machines' states and the variables.

Crash recovery (:mod:`engine.recovery`) keeps it on disk; a backup node (:mod:`engine.site`) follows the
primary's. Both read and write it through :func:`capture` and the two ways of putting it back:
:func:`restore_after_restart` and :func:`follow`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.safety import Safety
    from engine.show import Show

log = logging.getLogger("engine.show_memory")


@dataclass(frozen=True)
class ShowMemory:
    estop: bool = False
    estop_by: str = ""
    armed: tuple[str, ...] = ()
    standby: dict[str, str | None] = field(default_factory=dict)
    """Each cue list's standby cue (None: at the end of the list)."""
    states: dict[str, str | None] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["armed"] = list(self.armed)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> ShowMemory:
        """From what :meth:`as_dict` wrote; raises ValueError on anything else."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        try:
            memory = cls(
                estop=bool(data.get("estop", False)),
                estop_by=str(data.get("estop_by", "")),
                armed=tuple(str(name) for name in data.get("armed", [])),
                standby={str(k): (None if v is None else str(v)) for k, v in dict(data.get("standby", {})).items()},
                states={str(k): (None if v is None else str(v)) for k, v in dict(data.get("states", {})).items()},
                variables=dict(data.get("variables", {})),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not a show memory ({exc})") from None
        return memory


def capture(show: Show, safety: Safety) -> ShowMemory:
    return ShowMemory(
        estop=safety.latched,
        estop_by=safety.latched_by,
        armed=tuple(sorted(safety.armed)),
        standby={name: (c.standby.id if c.standby else None) for name, c in show.cue_lists.items()},
        states={name: machine.state for name, machine in show.machines.items()},
        variables={name: show.store.get(f"var.{name}").value for name in show.exhibit.variables},
    )


def restore_variables(show: Show, memory: ShowMemory) -> list[str]:
    """Put back the variables the exhibit still has, where the kept value is of the variable's type; the
    names restored."""
    restored = []
    for name, initial in show.exhibit.variables.items():
        if name not in memory.variables:
            continue
        value = memory.variables[name]
        if type(value) is not type(initial) and not (isinstance(initial, float) and type(value) is int):
            log.warning(
                "variable %s: the kept value %r is not a %s; it starts at %r", name, value, type(initial), initial
            )
            continue
        value = float(value) if isinstance(initial, float) else value
        if show.store.get(f"var.{name}").value != value:
            show.store.set(f"var.{name}", value)
        restored.append(name)
    return restored


def restore_standby(show: Show, memory: ShowMemory) -> None:
    """Each cue list's playhead back on its kept standby cue, without firing anything."""
    for name, cue_id in memory.standby.items():
        cue_list = show.cue_lists.get(name)
        if cue_list is None:
            continue
        if cue_id is None:
            cue_list.playhead = len(cue_list.cues)
        elif any(cue.id == cue_id for cue in cue_list.cues):
            cue_list.goto(cue_id)


def restore_after_restart(show: Show, safety: Safety, memory: ShowMemory) -> None:
    """After a restart, crash or not, before the show starts: a latched e-stop is latched again, variables and
    standby cues come back. Nothing is armed (motion waits for a deliberate arm, as after an e-stop) and no
    cue fires: the machines start in their initial states, the exhibit's attract behaviour."""
    if memory.estop:
        safety.estop(by=memory.estop_by or "before the restart")
    restore_variables(show, memory)
    if memory.armed:
        log.warning(
            "重启前已解锁的运动设备保持锁定 / armed before the restart, disarmed until armed again: %s",
            ", ".join(memory.armed),
        )


def follow(show: Show, safety: Safety, memory: ShowMemory) -> None:
    """A backup node takes the primary's show as it is: e-stop, armed devices, states (entering them runs their
    actions, on this node's model only), variables and standby cues."""
    if memory.estop and not safety.latched:
        safety.estop(by=memory.estop_by)
    elif not memory.estop and safety.latched:
        safety.reset()
    for name in set(safety.motion) - set(memory.armed):
        if name in safety.armed:
            safety.disarm(name)
    for name in memory.armed:
        if name in safety.motion and name not in safety.armed and not safety.latched:
            safety.arm(name)
    for name, state in memory.states.items():
        machine = show.machines.get(name)
        if machine is not None and state is not None and state in machine.states and machine.state != state:
            machine.go(state)
    restore_variables(show, memory)
    restore_standby(show, memory)
