"""The command line as a user meets it: one clear sentence for a mistake, never a traceback."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import launcher
from tests.conftest import FLAGSHIP, ROOT, free_port, run_launcher
from tests.support.net import wait_for_port


def copy_flagship(tmp_path: Path, edit: Callable[[str], str]) -> Path:
    """The flagship folder (with its recordings) copied, and its exhibit file edited."""
    folder = tmp_path / "canal-lanterns"
    shutil.copytree(FLAGSHIP.parent, folder)
    exhibit = folder / "exhibit.yaml"
    exhibit.write_text(edit(exhibit.read_text(encoding="utf-8")), encoding="utf-8")
    return exhibit


def test_flagship_runs_on_the_embedded_defaults_with_simulated_sensors():
    result = run_launcher(
        "run", "canal-lanterns", "--simulate", "--headless", "--duration", "2", "--embedded-port", str(free_port())
    )
    assert result.returncode == 0, result.stderr
    log = result.stderr
    assert "embedded MQTT broker (amqtt) listening" in log
    assert "connected to the MQTT broker" in log
    assert "all 8 devices are in their safe state" in log
    assert "pose sensor body is simulated from recordings/visitors.jsonl.gz" in log
    assert "published offline" in log
    assert "Traceback" not in log


def test_the_console_script_is_the_same_program():
    exhibit = Path(sys.executable).parent / "exhibit"
    assert exhibit.is_file(), "the `exhibit` console script is installed by `pip install -e .`"
    import subprocess

    result = subprocess.run([str(exhibit), "check", str(FLAGSHIP)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "ok" in result.stdout


def test_missing_exhibit_is_one_sentence():
    result = run_launcher("run", "no-such-exhibit")
    assert result.returncode == 1
    assert result.stderr.startswith("error: No exhibit file found at `no-such-exhibit`")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_port_in_use_is_one_sentence(tmp_path: Path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("0.0.0.0", 0))
        port = holder.getsockname()[1]
        exhibit = copy_flagship(tmp_path, lambda text: text.replace("port: 9000", f"port: {port}"))
        result = run_launcher("run", str(exhibit), "--duration", "5", "--embedded-port", str(free_port()))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: UDP port {port} is already in use, so OSC sensor `controls` cannot listen on "
        f"0.0.0.0:{port}; stop the other program or choose another port."
    ]
    assert "Traceback" not in result.stderr


def test_a_bad_broker_url_is_one_sentence():
    result = run_launcher("run", "canal-lanterns", "--broker", "http://example")
    assert result.returncode == 1
    assert "error: The broker address is not valid" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_broker_is_not_fatal():
    result = run_launcher(
        "run", "canal-lanterns", "--simulate", "--headless", "--no-render", "--broker", "mqtt://127.0.0.1:1",
        "--duration", "2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    log = result.stderr
    assert "ran for the requested 2.0 s" in log and "exhibit canal-lanterns stopped" in log
    assert log.count("waiting for the MQTT broker") == 1
    # Once, in one line: the broker was never reached, so no device got its safe state; no line per device.
    unsafe = [line for line in log.splitlines() if "confirm" in line and "safe state" in line]
    assert len(unsafe) == 1, log
    assert "7 of 8 devices never confirmed their safe state" in unsafe[0]  # sound has no broker to wait for
    assert "the MQTT broker at mqtt://127.0.0.1:1 was never reached" in unsafe[0]
    assert not [line for line in log.splitlines() if "boat" in line and line != unsafe[0]]
    assert "Traceback" not in log


def test_run_refuses_an_invalid_exhibit_and_starts_nothing(tmp_path: Path):
    exhibit = copy_flagship(tmp_path, lambda text: text.replace("kind: mqtt", "kind: mqtt\n    colour: red", 1))
    line = exhibit.read_text().splitlines().index("    colour: red") + 1
    result = run_launcher("run", str(exhibit), "--duration", "1")
    assert result.returncode == 2
    assert f"{exhibit}:{line}:5: unknown key `colour`" in result.stderr
    assert "nothing was started" in result.stderr
    assert "exhibit canal-lanterns started" not in result.stderr and "broker" not in result.stderr


def test_list_shows_the_flagship_bilingually():
    result = run_launcher("list")
    assert result.returncode == 0
    assert "canal-lanterns" in result.stdout and "运河灯影" in result.stdout


def test_json_logs_are_one_object_per_line():
    result = run_launcher(
        "--log-format",
        "json",
        "run",
        "canal-lanterns",
        "--simulate",
        "--duration",
        "1",
        "--embedded-port",
        str(free_port()),
    )
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert {"ts", "level", "logger", "msg"} <= set(entries[0])
    assert any(e["logger"] == "engine.runtime" and "started" in e["msg"] for e in entries)


def test_help_lists_every_subcommand():
    result = run_launcher("--help")
    for command in ("check", "run", "schema", "list", "bench"):
        assert command in result.stdout
    assert (ROOT / "launcher.py").is_file()


def test_a_missing_mqtt_password_is_one_sentence(tmp_path: Path):
    exhibit = copy_flagship(
        tmp_path,
        lambda text: text.replace(
            "  prefix: exhibit\n",
            "  prefix: exhibit\n  security: {username: show, password_env: EXHIBIT_TEST_NO_SUCH_VAR}\n",
        ),
    )
    result = run_launcher("run", str(exhibit), "--duration", "1", "--embedded-port", str(free_port()))
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "EXHIBIT_TEST_NO_SUCH_VAR" in errors[0]
    assert "Traceback" not in result.stderr


# One mistake, one sentence: each command below is given a path, an output, a broker or a port that cannot
# work, and must end with exactly one `error: ...` line (or check's problem format), never a traceback.


def one_sentence(result: subprocess.CompletedProcess[str], code: int = 1, *, alone: bool = True) -> str:
    """The one `error:` line of a failed command; ``alone``: nothing else was printed to stderr either."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    if alone:
        assert result.stderr.strip().splitlines() == errors, result.stderr
    return errors[0]


def launch_all(*commands: Sequence[str]) -> list[subprocess.CompletedProcess[str]]:
    """Several launcher runs at the same time (each its own process), their results in the order given."""
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda args: run_launcher(*args), commands))


def in_process(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``launcher.main(argv)`` here (for what a separate process cannot be pointed at): status, stdout, stderr."""
    monkeypatch.setattr(launcher, "setup_logging", lambda *args: None)  # keep pytest's logging as it is
    status = launcher.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    """A plain file, used as if it were a folder: refused for root too (permission bits are not)."""
    path = tmp_path / "notes.txt"
    path.write_text("not a folder\n")
    return path


def test_check_a_missing_exhibit_is_one_sentence(tmp_path: Path):
    by_name, empty_folder = launch_all(("check", "no-such-exhibit"), ("check", str(tmp_path)))
    assert one_sentence(by_name).startswith("error: No exhibit file found at `no-such-exhibit`")
    assert one_sentence(empty_folder).startswith(f"error: No exhibit file found at `{tmp_path}`")


def test_check_a_file_that_is_not_an_exhibit_is_a_problem(a_file: Path):
    result = run_launcher("check", str(a_file))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"{a_file}:1:1: an exhibit file must be a mapping of keys (`format_version: 1`, ...)",
        f"{a_file}: 1 problem; nothing was started.",
    ]


def test_run_a_bad_broker_port_is_one_sentence():
    error = one_sentence(run_launcher("run", "canal-lanterns", "--broker", "mqtt://127.0.0.1:notaport"))
    assert error == (
        "error: The broker address is not valid: broker port in `mqtt://127.0.0.1:notaport` "
        "is not a number between 1 and 65535."
    )


def test_run_an_impossible_embedded_port_is_one_sentence():
    error = one_sentence(run_launcher("run", "canal-lanterns", "--embedded-port", "99999"))
    assert error.startswith("error: The embedded broker port 99999 is not between 0 and 65535")


def test_run_falls_back_to_a_free_port_when_the_embedded_one_is_taken():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_launcher(
            "run", "canal-lanterns", "--simulate", "--headless", "--no-render", "--duration", "1",
            "--broker", "embedded", "--embedded-port", str(port),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"port {port} is taken; the embedded broker uses" in result.stderr
    assert "all 8 devices are in their safe state" in result.stderr
    assert "Traceback" not in result.stderr


def port_is_held(port: int) -> bool:
    with socket.socket() as plain:
        try:
            plain.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def test_a_second_run_right_after_the_first_keeps_the_embedded_port(launcher, subscriber):
    """Found: a client still connected when a run ended (gear, a console) left the port in TIME-WAIT, and a
    run started within the next minute said `port P is taken` and moved its broker away from the gear."""
    for _attempt in range(5):
        port = free_port()
        run = ("run", "canal-lanterns", "--simulate", "--headless", "--no-render", "--duration", "1",
               "--broker", "embedded", "--embedded-port", str(port))  # fmt: skip
        first = launcher(*run)
        wait_for_port(port, timeout=30)
        console = subscriber(port, "exhibit/canal-lanterns/status")  # connected until the broker goes away
        console.wait_for(lambda line: line == "exhibit/canal-lanterns/status online")
        code, output = first.wait(timeout=30)
        assert code == 0, output
        console.close()
        # The situation: a plain bind is refused. A connection the kernel ends with a reset (a last packet
        # still unread when the broker closed) leaves no TIME-WAIT: then the situation did not arise, go again.
        if port_is_held(port):
            break
    else:
        pytest.fail("five runs in a row left the port free: the situation this test is about never arose")
    second = run_launcher(*run)
    assert second.returncode == 0, second.stderr
    assert "is taken" not in second.stderr
    assert f"embedded MQTT broker (amqtt) listening on mqtt://127.0.0.1:{port}" in second.stderr
    assert "all 8 devices are in their safe state" in second.stderr


def test_shot_a_missing_exhibit_or_an_unwritable_output_is_one_sentence(tmp_path: Path, a_file: Path):
    missing = tmp_path / "missing"
    shot = ("shot", "canal-lanterns", "--at", "1", "--size", "160x90", "--out")
    no_exhibit, no_folder, under_a_file, a_folder = launch_all(
        ("shot", "no-such-exhibit", "--out", str(tmp_path / "x.png")),
        (*shot, str(missing / "x.png")),
        (*shot, str(a_file / "x.png")),
        (*shot, str(tmp_path)),
    )
    assert one_sentence(no_exhibit).startswith("error: No exhibit file found at `no-such-exhibit`")
    assert one_sentence(no_folder) == (
        f"error: Cannot write `{missing / 'x.png'}`: the folder `{missing}` does not exist; create it first."
    )
    assert (
        one_sentence(under_a_file) == f"error: Cannot write `{a_file / 'x.png'}`: `{a_file}` is a file, not a folder."
    )
    assert one_sentence(a_folder) == (
        f"error: `{tmp_path}` is a folder; give a file name, e.g. {tmp_path / 'picture.png'}."
    )
    assert not list(tmp_path.glob("**/*.png"))


def test_schema_an_unwritable_schema_file_is_one_sentence(
    tmp_path: Path, a_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    schema = a_file / "exhibit.schema.json"
    monkeypatch.setattr(launcher, "SCHEMA_PATH", schema)
    status, _, err = in_process(monkeypatch, capsys, "schema")
    assert status == 1
    assert err.splitlines() == [f"error: Cannot write `{schema}`: `{a_file}` is a file, not a folder."]
    schema = tmp_path / "missing" / "exhibit.schema.json"
    monkeypatch.setattr(launcher, "SCHEMA_PATH", schema)
    status, _, err = in_process(monkeypatch, capsys, "schema", "--check")
    assert status == 1
    assert err.splitlines() == [f"{schema} is out of date; run `python launcher.py schema`."]


def test_list_without_exhibits_or_with_an_unreadable_one_is_one_line_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    exhibits = tmp_path / "exhibits"
    monkeypatch.setattr(launcher, "EXHIBITS", exhibits)
    assert in_process(monkeypatch, capsys, "list") == (0, f"No exhibits under {exhibits}.\n", "")
    broken = exhibits / "broken" / "exhibit.yaml"
    broken.mkdir(parents=True)  # a folder where the file should be
    status, out, err = in_process(monkeypatch, capsys, "list")
    assert status == 0 and err == ""
    assert out.splitlines() == [
        f"{'broken':24} UNREADABLE (The exhibit file `{broken}` cannot be read: Is a directory.)"
    ]


def test_models_install_offline_is_one_sentence(tmp_path: Path):
    env = {"EXHIBIT_MODELS_DIR": str(tmp_path), "EXHIBIT_MODELS_URL": "http://127.0.0.1:1/x_{name}.task"}
    error = one_sentence(run_launcher("models", "--install", "lite", env=env))
    assert error.startswith("error: This machine cannot download the `lite` model (")
    assert error.endswith("); the shipped `full` model works offline.")
    assert not list(tmp_path.iterdir())


def test_models_install_into_an_unwritable_folder_is_one_sentence(a_file: Path):
    env = {
        "HOME": str(a_file),  # the user model folder would be under a file
        "EXHIBIT_MODELS_DIR": "",
        "XDG_DATA_HOME": "",
        "EXHIBIT_MODELS_URL": "http://127.0.0.1:1/x_{name}.task",
    }
    # Other libraries may warn that they cannot cache under this HOME; the mistake is still one sentence.
    error = one_sentence(run_launcher("models", "--install", "lite", env=env), alone=False)
    assert error == (
        f"error: Cannot install the `lite` model into `{a_file}/.local/share/exhibit-controller/models` "
        f"(`{a_file}` is a file, not a folder); set EXHIBIT_MODELS_DIR to a folder you can write."
    )


def test_models_a_bad_mirror_address_is_one_sentence(tmp_path: Path):
    env = {"EXHIBIT_MODELS_DIR": str(tmp_path), "EXHIBIT_MODELS_URL": "http://mirror/pose_{model}.task"}
    error = one_sentence(run_launcher("models", "--install", "lite", env=env))
    assert error.startswith("error: EXHIBIT_MODELS_URL `http://mirror/pose_{model}.task` is not a download address")


def test_record_a_missing_video_or_camera_is_one_sentence(tmp_path: Path):
    out = str(tmp_path / "visit.jsonl.gz")
    no_video, a_folder, no_camera = launch_all(
        ("record", "--video", str(tmp_path / "missing.mp4"), "--out", out),
        ("record", "--video", str(tmp_path), "--out", out),
        ("record", "--camera", "99", "--out", out, "--frames", "2"),
    )
    assert one_sentence(no_video) == f"error: The video file `{tmp_path / 'missing.mp4'}` does not exist."
    assert one_sentence(a_folder).startswith(f"error: `{tmp_path}` is a folder; give a video file")
    # Said before the pose model loads, so nothing else is on stderr.
    assert one_sentence(no_camera) == (
        "error: Cannot open camera `99` (no camera at 99); plug one in or choose another with `--camera`."
    )
    assert not list(tmp_path.iterdir())


def test_record_an_unwritable_output_is_one_sentence(tmp_path: Path, a_file: Path):
    record = ("record", "--video", str(tmp_path / "missing.mp4"), "--out")  # the output is checked first
    no_folder, under_a_file, a_folder = launch_all(
        (*record, str(tmp_path / "missing" / "r.jsonl")), (*record, str(a_file / "r.jsonl")), (*record, str(tmp_path))
    )
    assert one_sentence(no_folder).startswith(f"error: Cannot write `{tmp_path / 'missing' / 'r.jsonl'}`: the folder")
    assert one_sentence(under_a_file) == (
        f"error: Cannot write `{a_file / 'r.jsonl'}`: `{a_file}` is a file, not a folder."
    )
    assert one_sentence(a_folder) == (
        f"error: `{tmp_path}` is a folder; give a file name, e.g. {tmp_path / 'recording.jsonl.gz'}."
    )


def test_record_a_file_that_is_not_a_model_or_a_video_is_one_sentence(tmp_path: Path, a_file: Path):
    from tests.support.frames import canvas, write_video

    video = write_video(tmp_path / "empty.avi", [canvas()] * 3)
    out = str(tmp_path / "visit.jsonl")
    not_a_model, not_a_video = launch_all(
        ("record", "--video", str(video), "--out", out, "--model", str(a_file)),
        ("record", "--video", str(a_file), "--out", out),
    )
    # MediaPipe's own start-up lines may come before the sentence.
    assert one_sentence(not_a_model, alone=False).startswith(f"error: The pose model `{a_file}` cannot be loaded")
    assert one_sentence(not_a_video) == (
        f"error: `{a_file}` cannot be opened as a video; give a video file such as an .mp4."
    )
    assert not (tmp_path / "visit.jsonl").exists()


def test_bench_outside_a_source_checkout_is_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setattr(launcher, "ROOT", tmp_path)  # an installed package: no tests/bench/ next to it
    status, _, err = in_process(monkeypatch, capsys, "bench", "--quick")
    assert status == 1
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: The benchmarks are part of the source checkout")


def test_the_studio_takes_another_port_when_its_own_is_taken_and_prints_its_link(tmp_path: Path):
    with socket.socket() as taken:
        try:
            taken.bind(("127.0.0.1", launcher.STUDIO_PORT))
            taken.listen()
        except OSError:
            pass  # taken already: the situation itself
        done = run_launcher(
            "studio", "canal-lanterns", "--no-render", "--duration", "2",
            "--accounts", str(tmp_path / "accounts.json"), "--audit-log", str(tmp_path / "audit.log"),
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stdout.splitlines() if line.startswith("Studio / 工作室: ")]
    assert line.startswith("Studio / 工作室: http://127.0.0.1:") and "/login?token=" in line
    assert line.endswith("&next=/studio") and f":{launcher.STUDIO_PORT}/" not in line
    assert "simulated sensors" in done.stderr
