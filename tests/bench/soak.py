"""``launcher.py bench``: memory over a long run (a soak). How fast the flagship's render process and its
controller grow while the exhibit runs as a user runs it, each against a floor measured over the same minutes
(``render_rss_growth_mib_per_hour``, ``controller_rss_growth_mib_per_hour``, in MiB/h).

Four processes run side by side (memory, unlike speed, is hardly disturbed by running them together):

* the flagship, ``launcher.py run canal-lanterns --simulate --headless --no-reload --broker <private Mosquitto>``:
  its controller process, and its render process, the controller's ``spawn``ed multiprocessing child (found in
  /proc: a child whose command line holds ``multiprocessing.spawn``; the ``resource_tracker`` child is not it);
* the render floor: ``python -m tests.bench.soak bare``, a bare Panda3D loop drawing the flagship's scene as
  built (nothing moves, no snapshots: ``content.renderer.render_bare``'s loop, paced at 60 fps) at the size the
  flagship's render process draws, offscreen, until told to stop;
* the controller floor: ``launcher.py run --no-render`` of the OSC bench's exhibit (``procs.PROBE_EXHIBIT``: one OSC
  float mapped to one MQTT device), idle.

Every few seconds each process's resident memory (VmRSS in ``/proc/<pid>/status``) is read. A process's growth is
the least-squares slope of its RSS over time after a warm-up (the first 20% of the run, at least 30 s), in MiB per
hour. If the render process restarts (its pid changes), that is logged and noted, and its figure is the pid seen
longest. The ratio to a floor is given only where the floor itself grows (near zero it means nothing).
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt

from tests.bench.procs import PROBE_EXHIBIT, BenchError, Children, start_mosquitto, wait_for_payload
from tests.bench.results import ProcessMemory, RssTrace, SoakResults
from tests.support.net import free_port

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parents[2]
FLAGSHIP_ID = "canal-lanterns"
FLAGSHIP = ROOT / "exhibits" / FLAGSHIP_ID / "exhibit.yaml"
FLAGSHIP_STATUS = f"exhibit/{FLAGSHIP_ID}/status"
RENDER_HEALTH = f"exhibit/{FLAGSHIP_ID}/health/render"
BASELINE_STATUS = "exhibit/bench/status"
BARE_FPS = 60.0
DONE = "done"
"""The prefix of the bare loop's last line (its figures as JSON)."""


@dataclass(frozen=True)
class SoakPlan:
    seconds: float
    """How long the four processes are watched, once all of them run."""
    interval_s: float
    """Seconds between two samples of every process."""

    @property
    def warmup_s(self) -> float:
        """Left out of the fit: the first 20% of the run, at least 30 s (at most half of a very short run)."""
        return min(max(0.2 * self.seconds, 30.0), 0.5 * self.seconds)

    def lasting(self, minutes: float) -> SoakPlan:
        if not minutes > 0:
            raise ValueError(f"a soak lasts a positive number of minutes, not {minutes}")
        return replace(self, seconds=minutes * 60.0)


FULL_SOAK = SoakPlan(seconds=600.0, interval_s=5.0)
QUICK_SOAK = SoakPlan(seconds=90.0, interval_s=2.0)


# --- the parent's side ----------------------------------------------------------------------------------------------


def run_soak(plan: SoakPlan, mosquitto: str) -> SoakResults:
    """Start the four processes, sample them for ``plan.seconds``; every child is stopped, every temp file removed."""
    with tempfile.TemporaryDirectory(prefix="exhibit-bench-soak-") as tmp:
        children = Children(Path(tmp))
        health: HealthReports | None = None
        try:
            mqtt_port = start_mosquitto(children, mosquitto)
            broker = f"mqtt://127.0.0.1:{mqtt_port}"
            cap = f"{plan.seconds + 300.0:g}"  # every child is stopped before; this only ends an orphan
            argv = [sys.executable, "launcher.py", "run", FLAGSHIP_ID, "--simulate", "--headless", "--no-reload"]
            flagship = children.start("flagship", [*argv, "--broker", broker, "--duration", cap], cwd=ROOT)
            baseline = start_controller_baseline(children, broker, cap)
            argv = [sys.executable, "-m", "tests.bench.soak", "bare", "--seconds", cap]
            children.start("render-bare", argv, pipes=True, cwd=ROOT)
            wait_online(children, "flagship", flagship, mqtt_port, FLAGSHIP_STATUS)
            wait_online(children, "controller-baseline", baseline, mqtt_port, BASELINE_STATUS)
            children.wait_ready("render-bare", timeout=60.0)
            wait_render_process(children, flagship.pid, timeout=30.0)
            health = HealthReports(mqtt_port, RENDER_HEALTH)
            log.info("soak: all four processes run; sampling every %g s for %g s", plan.interval_s, plan.seconds)
            start = time.monotonic()
            watched = sample(children, plan, start)
            health.close()
            bare = stop_bare(children)
            code = children.stop("flagship")
            if code != 0:
                log.warning(
                    "the flagship exited with status %s after SIGTERM:\n%s", code, children.log_text("flagship")
                )
        finally:
            if health is not None:
                health.close()
            children.stop_all()
    result = SoakResults(
        render=watched["render"].memory(),
        render_bare=watched["render-bare"].memory(),
        controller=watched["flagship"].memory(),
        controller_bare=watched["controller-baseline"].memory(),
        seconds=plan.seconds,
        interval_s=plan.interval_s,
        warmup_s=plan.warmup_s,
        size=(int(bare["size"][0]), int(bare["size"][1])),
        bare_fps=bare["frames"] / bare["seconds"],
        render_fps=tuple(
            float(report["fps"])
            for at, report in health.reports
            if at - start >= plan.warmup_s and report.get("state") == "running"
        ),
        render_restarts=int(health.reports[-1][1]["restarts"]) if health.reports else None,
    )
    for name, memory in watched_memory(result).items():
        fitted = memory.longest.fitted(plan.warmup_s)
        if fitted < 3:
            raise BenchError(f"the {name} process has only {fitted} samples after the {plan.warmup_s:g} s warm-up")
    log.info(
        "soak: render process %+.2f MiB/h (bare loop %+.2f), controller %+.2f MiB/h (baseline %+.2f)",
        result.render.growth(plan.warmup_s), result.render_bare.growth(plan.warmup_s),
        result.controller.growth(plan.warmup_s), result.controller_bare.growth(plan.warmup_s),
    )  # fmt: skip
    return result


def watched_memory(result: SoakResults) -> dict[str, ProcessMemory]:
    return {
        "render": result.render,
        "bare render loop": result.render_bare,
        "flagship controller": result.controller,
        "baseline controller": result.controller_bare,
    }


def start_controller_baseline(children: Children, broker: str, cap: str) -> subprocess.Popen[str]:
    exhibit = children.workdir / "bench-exhibit.yaml"
    text = PROBE_EXHIBIT.format(exhibit_id="bench", udp_port=free_port(socket.SOCK_DGRAM))
    exhibit.write_text(text, encoding="utf-8")
    argv = [sys.executable, "launcher.py", "run", str(exhibit), "--headless", "--no-reload", "--no-render"]
    return children.start("controller-baseline", [*argv, "--broker", broker, "--duration", cap], cwd=ROOT)


def wait_online(children: Children, name: str, proc: subprocess.Popen[str], mqtt_port: int, topic: str) -> None:
    if not wait_for_payload(mqtt_port, topic, b"online", timeout=30.0, alive=proc):
        state = f"exited with status {proc.returncode}" if proc.poll() is not None else "did not say online in 30 s"
        raise children.failed(name, f"{name} {state}")


def wait_render_process(children: Children, controller: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = render_processes(controller)
        if found:
            return found[-1]
        time.sleep(0.1)
    raise children.failed("flagship", f"the flagship started no render process within {timeout:.0f} s")


def sample(children: Children, plan: SoakPlan, start: float) -> dict[str, Watched]:
    """Every process's RSS at ``start`` + 0, interval, 2 * interval ... ``plan.seconds`` (absolute deadlines)."""
    fixed = {name: children.procs[name] for name in ("flagship", "render-bare", "controller-baseline")}
    watched = {name: Watched(name) for name in ("render", *fixed)}
    count = int(plan.seconds / plan.interval_s + 1e-9) + 1
    for index in range(count):
        time.sleep(max(0.0, start + index * plan.interval_s - time.monotonic()))
        now = time.monotonic() - start
        for name, proc in fixed.items():
            if proc.poll() is not None:
                raise children.failed(name, f"{name} exited with status {proc.returncode} {now:.0f} s into the soak")
            watched[name].add(proc.pid, now)
        render = watched["render"]
        found = render_processes(fixed["flagship"].pid)
        if len(found) > 1:
            log.warning("the flagship has %d render-like children (%s); following the newest", len(found), found)
        render.add(render.pid if render.pid in found else (found[-1] if found else None), now)
    return watched


class Watched:
    """One process's samples, by pid, in the order the pids were seen."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pid: int | None = None
        self.samples: dict[int, list[tuple[float, float]]] = {}
        self.missed = 0

    def add(self, pid: int | None, seconds: float) -> None:
        mib = None if pid is None else rss_mib(pid)
        if pid is None or mib is None:
            self.missed += 1
            return
        if self.pid is not None and pid != self.pid:
            log.warning("soak: the %s process restarted %.0f s in (pid %d, then %d)", self.name, seconds, self.pid, pid)
        self.pid = pid
        self.samples.setdefault(pid, []).append((seconds, mib))

    def memory(self) -> ProcessMemory:
        if not self.samples:
            raise BenchError(f"the {self.name} process was never sampled")
        traces = tuple(
            RssTrace(pid, np.array([t for t, _ in rows]), np.array([mib for _, mib in rows]))
            for pid, rows in self.samples.items()
        )
        return ProcessMemory(traces=traces, missed=self.missed)


def rss_mib(pid: int) -> float | None:
    """The process's resident set (VmRSS) in MiB; None once it is gone (or a zombie, which has none)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0  # kB
    return None


def render_processes(controller: int) -> list[int]:
    """The controller's ``multiprocessing.spawn`` children that are not its ``resource_tracker``, oldest first."""
    found: list[tuple[int, int]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ... starttime is field 22
        if int(fields[1]) == controller and "multiprocessing.spawn" in cmdline and "resource_tracker" not in cmdline:
            found.append((int(fields[19]), int(entry.name)))
    return [pid for _, pid in sorted(found)]


class HealthReports:
    """Every report the flagship publishes on its render health topic (``render.fps``, ``restarts``...), with the
    ``time.monotonic()`` it came at."""

    def __init__(self, port: int, topic: str) -> None:
        self.reports: list[tuple[float, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._client: mqtt.Client | None = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self._client.on_connect = lambda client, *_: client.subscribe(topic, qos=1)
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            report = json.loads(message.payload)
        except ValueError:
            return
        if isinstance(report, dict) and not message.retain:  # a retained one is from before the soak
            with self._lock:
                self.reports.append((time.monotonic(), report))

    def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None


def stop_bare(children: Children) -> dict[str, Any]:
    """Tell the bare loop to stop; its figures (frames drawn, seconds, picture size)."""
    from tests.bench.inputs import reply, tell

    tell(children, "render-bare", "stop")
    deadline = time.monotonic() + 30.0
    while (left := deadline - time.monotonic()) > 0:
        line = reply(children, "render-bare", left)
        if line.startswith(DONE + " "):
            figures: dict[str, Any] = json.loads(line[len(DONE) + 1 :])
            children.finish("render-bare", timeout=30.0)
            if figures["picture_std"] == 0:
                raise BenchError("the bare loop's last picture is one flat colour: the scene was not drawn")
            return figures
    raise children.failed("render-bare", "the bare loop did not stop within 30 s")


# --- the bare loop: the child's side ---------------------------------------------------------------------------------


def bare_loop(seconds: float, fps: float = BARE_FPS) -> dict[str, Any]:
    """Draw the flagship's scene as built, nothing moving, at ``fps`` until ``stop`` (or EOF) on stdin or
    ``seconds`` pass; ``ready`` on stdout once the first frame is drawn. Its figures, to print when it stops."""
    from content.renderer import SceneRenderer
    from engine.validate import load_exhibit
    from launcher import build_registry

    spec = load_exhibit(FLAGSHIP, build_registry()).scene  # type: ignore[attr-defined]
    if spec is None:
        raise BenchError(f"{FLAGSHIP} has no `scene:`")
    size = tuple(spec.outputs[0].size)  # what the flagship's render process draws, headless
    stop = threading.Event()

    def listen() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()  # told to, or the bench went away

    threading.Thread(target=listen, name="stdin", daemon=True).start()
    renderer = SceneRenderer(spec, FLAGSHIP.parent, size=size, offscreen=True)
    try:
        renderer.display.render()
        print("ready", flush=True)
        period = 1.0 / fps
        frames = 0
        start = due = time.perf_counter()
        while not stop.is_set() and time.perf_counter() - start < seconds:
            renderer.display.render()
            frames += 1
            due += period
            late = time.perf_counter() - due
            if late < 0:
                stop.wait(-late)
            elif late > period:
                due = time.perf_counter()  # behind: go on from now, no catching up
        elapsed = time.perf_counter() - start
        return {
            "frames": frames,
            "seconds": elapsed,
            "size": list(size),
            "picture_std": float(np.std(renderer.capture())),
            "renderer": f"{renderer.display.renderer_name} ({renderer.display.module})",
        }
    finally:
        renderer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.soak")
    commands = parser.add_subparsers(dest="command", required=True)
    bare = commands.add_parser("bare", help="draw the flagship's scene, nothing moving, at 60 fps until told to stop")
    bare.add_argument("--seconds", type=float, required=True, help="stop after this long even if not told to")
    args = parser.parse_args(argv)
    figures = bare_loop(args.seconds)
    print(f"{DONE} {json.dumps(figures)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
