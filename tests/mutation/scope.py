"""What the mutation run mutates: the code that keeps people and shows safe.

:data:`SCOPE` maps each source file to the functions whose mutants are tested (``None``: every function in
the file). ``[tool.mutmut] only_mutate`` in ``pyproject.toml`` must name the same files (mutmut generates
mutants for whole files; the run then tests only those of the functions named here). A function here that
no longer exists stops the run with a sentence, so a rename cannot quietly shrink the scope.
"""

from __future__ import annotations

SCOPE: dict[str, tuple[str, ...] | None] = {
    # The motion gate, arming and the e-stop latch.
    "engine/safety.py": None,
    # PANIC, the e-stop, reset, and what stops cues, timelines and logic (also at closing time); the
    # e-stop inputs are bound in Show.start and read in Show._on_estop_signal.
    "engine/show.py": (
        "Show.start",
        "Show.stop",
        "Show.go",
        "Show.pause",
        "Show.resume",
        "Show.panic",
        "Show.estop",
        "Show._stop_motion",
        "Show.reset_estop",
        "Show.arm",
        "Show.disarm",
        "Show._arm_action",
        "Show._on_estop_signal",
        "Show.reset",
        "Show._on_close",
    ),
    # What `check` accepts as an e-stop input (an event or a true/false signal) and as an armed motion device.
    "engine/show_check.py": ("_Checker.trigger", "_Checker.motion_ref"),
    "engine/cues.py": None,
    "engine/conditions.py": None,
    "engine/fades.py": None,
    "engine/mapping.py": None,
    # MQTT devices: the safe state, nothing after the clean stop, expiry and its keep-alive.
    "devices/mqtt/device.py": (
        "MqttDeviceConfig.is_motion",
        "MqttDeviceConfig.safe_state",
        "MqttDevice.set",
        "MqttDevice._encode",
        "MqttDevice.run",
        "MqttDevice._keep_alive",
        "MqttDevice.go_safe",
        "with_expiry",
    ),
    # Profiles' safe states and the motor's soft limits, speed and acceleration limits.
    "devices/mqtt/profiles.py": (
        "ProfileBase.safe_state",
        "_check_limits",
        "MotorProfile._check_config",
        "MotorProfile.default_properties",
        "MotorProfile.limiter",
        "MotionLimiter._braking_cap",
        "MotionLimiter._advance",
        "MotionLimiter._within_limits",
        "MotionLimiter.limit_speed",
        "MotionLimiter.limit_position",
    ),
    # How an MQTT input (the building's e-stop relay) is read.
    "devices/mqtt/inputs.py": ("read_payload", "_typed", "MqttSensor._on_message"),
    "devices/dmx.py": ("DmxDeviceConfig.safe_state", "DmxDevice.go_safe", "DmxUniverse.send_now"),
    "devices/osc_out.py": ("OscOutConfig.safe_state", "OscOutDevice.go_safe"),
}


def module_name(path: str) -> str:
    """``engine/show.py`` -> ``engine.show``."""
    return path.removesuffix(".py").replace("/", ".")


def mangled(function: str) -> str:
    """mutmut's name for a function: ``Show.panic`` -> ``xǁShowǁpanic``, ``with_expiry`` -> ``x_with_expiry``."""
    owner, _, name = function.rpartition(".")
    return f"xǁ{owner}ǁ{name}" if owner else f"x_{name}"


def unmangled(name: str) -> str:
    """The inverse of :func:`mangled`."""
    if name.startswith("xǁ"):
        _, owner, function = name.split("ǁ")
        return f"{owner}.{function}"
    return name.removeprefix("x_")


def patterns(only: frozenset[str] | None = None) -> list[str]:
    """The mutant names (fnmatch patterns) ``mutmut run`` is given: every mutant in scope, or only those of
    the modules in ``only``."""
    found = []
    for path, functions in SCOPE.items():
        module = module_name(path)
        if only is not None and module not in only:
            continue
        if functions is None:
            found.append(f"{module}.*")
        else:
            found.extend(f"{module}.{mangled(function)}__mutmut_*" for function in functions)
    return found


def in_scope(module: str, function: str) -> bool:
    """Whether mutants of ``function`` (``Show.panic``) in ``module`` (``engine.show``) are tested."""
    for path, functions in SCOPE.items():
        if module_name(path) == module:
            return functions is None or function in functions
    return False
