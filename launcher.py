#!/usr/bin/env python3
"""The exhibit controller's command line (also installed as ``exhibit``).

    exhibit check EXHIBIT...      validate (exit 0 valid, 2 invalid)
    exhibit run EXHIBIT           run it (--broker, --duration, --headless, --simulate, --no-render,
                                  --console-host, --console-port, --no-console, --accounts, --audit-log)
    exhibit shot EXHIBIT --out F  render its scene offscreen with simulated visitors (--at, --size)
    exhibit schema                regenerate exhibits/exhibit.schema.json
    exhibit list                  the exhibits under exhibits/
    exhibit new NAME --template T a new exhibit folder from a template
    exhibit models [--install]    pose models: list them, install official ones
    exhibit record --camera|--video --out FILE   a landmark-only recording
    exhibit bench [--json]        performance figures against a baseline
    exhibit diagnose EXHIBIT      a support bundle, secrets redacted (--out FILE, --state-dir DIR)
    exhibit report EXHIBIT --from DATE --to DATE   visitor analytics as HTML (--out FILE.html, --pdf)
    exhibit export EXHIBIT --from DATE --to DATE --out DIR   as CSV and Parquet (--format csv,parquet)
                                  (report and export take --state-dir DIR, --simulated; k-anonymity applied)
    exhibit user add NAME --role viewer|operator|admin   a console user (--password-stdin, --replace)
    exhibit user list | user remove NAME                  the console's users
    exhibit token add NAME --role ROLE                    an API token for a machine, shown once
    exhibit token list | token remove NAME                the API tokens
                                  (user and token commands take --accounts FILE)

This module only reads the command line and turns mistakes into sentences. The runtime is built by
:func:`engine.runtime.assemble` from the drivers and services of :func:`engine.registry.load_registry`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import getpass
import io
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from engine.authority import TAKEOVER_AFTER
from engine.control.accounts import ROLE_ZH, Accounts, check_name, check_password_text, check_role
from engine.errors import UserError
from engine.logs import add_file_logging, remove_file_logging, setup_logging
from engine.model import parse_broker_url
from engine.problems import ExhibitInvalid
from engine.registry import Registry, load_registry
from engine.runtime import RenderMode, RuntimeOptions
from engine.schema import schema_text
from engine.systemd_unit import UNIT_DIR, ServicePlan, unit_text
from engine.templates import TEMPLATES, create_exhibit
from engine.validate import EXHIBIT_FILE, load_exhibit, resolve_exhibit_path

if TYPE_CHECKING:  # the pose stack (MediaPipe, OpenCV) loads only for the commands that use it
    from sensors.pose.inference import PoseEstimator
    from sensors.pose.sources import FrameSource

ROOT = Path(__file__).resolve().parent
EXHIBITS = ROOT / "exhibits"
SCHEMA_PATH = EXHIBITS / "exhibit.schema.json"


def build_registry() -> Registry:
    """Every driver, service and section the project ships."""
    return load_registry()


def cmd_check(args: argparse.Namespace) -> int:
    registry: Registry | None = None
    status = 0
    for spec in args.exhibits:
        path = resolve_exhibit_path(spec, EXHIBITS)
        if registry is None:  # built after the first path is found: a mistyped one is said at once
            registry = build_registry()
        try:
            exhibit = load_exhibit(path, registry, hardware=args.hardware)
        except ExhibitInvalid as invalid:
            for problem in invalid.problems:
                print(problem, file=sys.stderr)
            count = len(invalid.problems)
            print(f"{path}: {count} problem{'s' if count != 1 else ''}; nothing was started.", file=sys.stderr)
            status = 2
        else:
            print(
                f"{path}: ok ({exhibit.id}: {len(exhibit.sensors)} sensors, "
                f"{len(exhibit.devices)} devices, {len(exhibit.mappings)} mappings)"
            )
    return status


def cmd_run(args: argparse.Namespace) -> int:
    return _serve(args, studio=False)


def cmd_studio(args: argparse.Namespace) -> int:
    """`run` for a curator: simulated sensors, the console on loopback only, a login link to the studio."""
    args.simulate, args.headless, args.no_reload, args.no_console = True, True, False, False
    args.console_host = "127.0.0.1"
    args.console_port = args.port if args.port is not None else _free_or_any(STUDIO_PORT)
    # The exhibit's own broker may be the venue's: the studio drives the embedded one unless told otherwise.
    args.broker = args.broker or "embedded"
    return _serve(args, studio=True)


STUDIO_PORT = 8090


def _free_or_any(port: int) -> int:
    """``port`` if nothing listens on it on loopback, else 0 (any free port: the link printed says which)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


def _serve(args: argparse.Namespace, *, studio: bool) -> int:
    from engine.session import serve

    path = resolve_exhibit_path(args.exhibit, EXHIBITS)
    if args.broker is not None and args.broker != "embedded":
        broker_address(args.broker)
    if not 0 <= args.embedded_port <= 65535:
        raise UserError(
            f"The embedded broker port {args.embedded_port} is not between 0 and 65535; "
            "choose another with `--embedded-port` (0: any free port)."
        )
    if args.console_port is not None and not 0 <= args.console_port <= 65535:
        option = "--port" if studio else "--console-port"
        raise UserError(
            f"The console port {args.console_port} is not between 0 and 65535; choose another with "
            f"`{option}` (0: any free port) / 控制台端口 {args.console_port} 不在 0 到 65535 之间"
        )
    if getattr(args, "role", None):
        _takeover_after(args.takeover_after)
    if args.console_host is not None and not args.console_host.strip():
        raise UserError("`--console-host` is empty; give an address such as 127.0.0.1 / 控制台地址为空")
    accounts = named_file(args.accounts, "accounts.json") if args.accounts else None
    audit = named_file(args.audit_log, "audit.log") if args.audit_log else None
    state_dir = Path(args.state_dir).expanduser() if args.state_dir else None
    registry = build_registry()
    exhibit = load_exhibit(path, registry)
    options = RuntimeOptions(
        simulate=args.simulate,
        base_dir=path.parent,
        broker=args.broker,
        embedded_port=args.embedded_port,
        render=render_mode(args),
        console=not args.no_console,
        console_host=args.console_host,
        console_port=args.console_port,
        accounts=accounts,
        audit_log=audit or (state_dir or default_state_dir(exhibit.id)) / "audit.log",
        state_dir=state_dir or default_state_dir(exhibit.id),
        exhibit_file=path,
        studio=studio,
        node=getattr(args, "node", None) or "",
        role=getattr(args, "role", None),
        site_prefix=getattr(args, "site", None),
        takeover_after=getattr(args, "takeover_after", TAKEOVER_AFTER),
    )
    watch = None if args.no_reload else path
    from devices.systemd_notify import SystemdNotifier

    notifier = SystemdNotifier.from_environment()  # run by systemd (`exhibit service install`): tell it how it goes
    log_file = add_file_logging(options.state_dir) if options.state_dir is not None else None  # <state>/logs/
    try:
        asyncio.run(serve(exhibit, registry, options, duration=args.duration, watch=watch, notifier=notifier))
    finally:
        remove_file_logging(log_file)
        if notifier is not None:
            notifier.close()
    return 0


def named_file(name: str, example: str) -> Path:
    """A file the user named on the command line, which may not exist yet; one sentence when it is a folder."""
    path = Path(name).expanduser()
    if path.is_dir():
        raise UserError(
            f"`{path}` is a folder; give a file name, e.g. {path / example} / “{path}”是文件夹，请给出文件名"
        )
    return path


def default_state_dir(exhibit_id: str) -> Path:
    """``$XDG_STATE_HOME/exhibit-controller/<exhibit id>`` (``~/.local/state/...`` when unset): the node's state
    for crash recovery, its log files, health history and the audit log."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")  # empty: unset (XDG)
    return Path(state) / "exhibit-controller" / exhibit_id


def default_audit_log(exhibit_id: str) -> Path:
    """``audit.log`` in :func:`default_state_dir`."""
    return default_state_dir(exhibit_id) / "audit.log"


def broker_address(url: str) -> tuple[str, int]:
    try:
        return parse_broker_url(url)
    except ValueError as exc:
        raise UserError(f"The broker address is not valid: {exc}.") from None


def render_mode(args: argparse.Namespace) -> RenderMode:
    """A window where there is a display; offscreen with --headless or without one (servers, CI)."""
    if args.no_render:
        return "off"
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or sys.platform != "linux"
    return "offscreen" if args.headless or not has_display else "window"


def cmd_shot(args: argparse.Namespace) -> int:
    path = resolve_exhibit_path(args.exhibit, EXHIBITS)
    size = parse_size(args.size) if args.size else None
    out = writable_file(args.out)
    registry = build_registry()
    exhibit = load_exhibit(path, registry)
    if getattr(exhibit, "scene", None) is None:
        raise UserError(f"{path} has no `scene:` to take a picture of.")
    from content.offscreen import save_png
    from content.shot import take_shot

    frame = asyncio.run(take_shot(exhibit, registry, path.parent, args.at, size))
    save_png(frame, out)
    print(f"wrote {out}: {frame.shape[1]}x{frame.shape[0]}, {args.at:g} s into the simulated exhibit")
    return 0


def writable_file(name: str | Path, example: str = "picture.png") -> Path:
    """``name`` as a file this user can write, or one sentence saying why not (before any work is done)."""
    path = Path(name)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UserError(f"`{path}` is a folder; give a file name, e.g. {path / example}.")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise UserError(f"Cannot write `{path}`: `{existing}` is a file, not a folder.")
    if not folder.is_dir():
        raise UserError(f"Cannot write `{path}`: the folder `{folder}` does not exist; create it first.")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"Cannot write `{path}`: permission denied.")
    return path


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise UserError(f"The size `{text}` is not WIDTHxHEIGHT, e.g. 1280x720.") from None
    if width <= 0 or height <= 0:
        raise UserError(f"The size `{text}` must be positive, e.g. 1280x720.")
    return width, height


def cmd_schema(args: argparse.Namespace) -> int:
    text = schema_text(build_registry())
    if args.check:
        if not SCHEMA_PATH.is_file() or SCHEMA_PATH.read_text(encoding="utf-8") != text:
            print(f"{SCHEMA_PATH} is out of date; run `python launcher.py schema`.", file=sys.stderr)
            return 1
        print(f"{SCHEMA_PATH} is up to date.")
        return 0
    writable_file(SCHEMA_PATH, example=SCHEMA_PATH.name).write_text(text, encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
    return 0


def cmd_sound_outputs(args: argparse.Namespace) -> int:
    from devices.sound.outputs import list_outputs

    names = list_outputs(driver=args.driver)
    if not names:
        print("No sound output on this computer: exhibits run on silently. / 本机没有声音输出，展项照常运行。")
        return 0
    print("Sound outputs (the first is the default) / 声音输出（第一个为默认）:")
    for name in names:
        print(f"  {name}")
    print("Name one in `audio.outputs.<output>.device`; sounds choose it with `output: <output>`.")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    registry = build_registry()
    folders = sorted(p.parent for p in EXHIBITS.glob(f"*/{EXHIBIT_FILE}"))
    if not folders:
        print(f"No exhibits under {EXHIBITS}.")
    for folder in folders:
        try:
            exhibit = load_exhibit(folder / EXHIBIT_FILE, registry)
        except ExhibitInvalid as invalid:
            print(f"{folder.name:24} INVALID ({len(invalid.problems)} problems; run `check {folder.name}`)")
            continue
        except UserError as exc:
            print(f"{folder.name:24} UNREADABLE ({exc})")
            continue
        title = exhibit.title.en + (f" / {exhibit.title.zh}" if exhibit.title.zh else "")
        print(f"{folder.name:24} {title}")
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    folder = create_exhibit(args.name, args.template, args.into or EXHIBITS)
    spec = args.name if args.into is None else str(folder)
    print(f"made {folder} from the `{args.template}` template / 已由模板创建展项")
    print(f"  try it:  exhibit run {spec} --simulate")
    print(f"  edit:    {folder / EXHIBIT_FILE}, then `exhibit check {spec}`")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from sensors.pose import models

    for name in args.install or []:
        path = models.install(name)
        print(f"installed {name}: {path}")
    print(f"{'model':8} {'origin':10} {'MB':>6}  path")
    for info in models.available():
        print(f"{info.name:8} {info.origin:10} {info.size_mb:6.1f}  {info.path}")
    print(f"official bundles install into {models.user_dir()} (`models --install lite|full|heavy`, needs internet)")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from sensors.pose import models
    from sensors.pose.record import record
    from sensors.pose.sources import SourceLost

    out = writable_file(args.out, example="recording.jsonl.gz")
    model = models.resolve(args.model)
    source = open_source(args)  # before the model loads: a missing camera is said at once
    try:
        estimator = pose_estimator(model, args.num_poses)
    except BaseException:
        source.close()
        raise
    try:
        stats = record(source, estimator, out, duration=args.duration, max_frames=args.frames)
    except SourceLost as exc:
        raise UserError(f"Nothing was recorded: {exc}.") from None
    finally:
        estimator.close()
    print(f"wrote {args.out}: {stats.frames} frames ({stats.frames_with_people} with people), landmarks only")
    return 0


def open_source(args: argparse.Namespace) -> FrameSource:
    """The camera or video ``record`` reads, opened; one sentence when it is not there."""
    import cv2

    from sensors.pose.sources import CameraSource, SourceLost, VideoFileSource

    # OpenCV's own warnings ("can't be used to capture by name") would add lines to the sentence below.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

    source: FrameSource
    if args.video is not None:
        video = Path(args.video)
        if video.is_dir():
            raise UserError(f"`{video}` is a folder; give a video file, e.g. {video / 'visitors.mp4'}.")
        if not video.is_file():
            raise UserError(f"The video file `{video}` does not exist.")
        source = VideoFileSource(video, loop=False, realtime=False)
        advice = f"`{video}` cannot be opened as a video; give a video file such as an .mp4."
    else:
        camera = int(args.camera) if str(args.camera).isdigit() else args.camera
        source = CameraSource(camera)
        advice = f"Cannot open camera `{camera}` ({{reason}}); plug one in or choose another with `--camera`."
    try:
        source.open()
    except SourceLost as exc:
        raise UserError(advice.format(reason=exc)) from None
    return source


def pose_estimator(model: Path, num_poses: int) -> PoseEstimator:
    """The pose model loaded; one sentence when the file is not a model MediaPipe can load."""
    from sensors.pose.inference import PoseEstimator

    try:
        return PoseEstimator(model, num_poses=num_poses)
    except (RuntimeError, ValueError, OSError):
        raise UserError(
            f"The pose model `{model}` cannot be loaded: it is not a MediaPipe pose landmarker bundle; "
            "give a .task file, or `lite`, `full` or `heavy` (see `python launcher.py models`)."
        ) from None


@contextmanager
def sentences() -> Iterator[None]:
    """The accounts module's ValueError sentences (bad name, short password...) as the user's errors."""
    try:
        yield
    except ValueError as exc:
        raise UserError(str(exc)) from None


def open_accounts(args: argparse.Namespace) -> Accounts:
    return Accounts(named_file(args.accounts, "accounts.json") if args.accounts else Accounts.default_path())


def role_text(role: str) -> str:
    return f"{role} / {ROLE_ZH.get(role, role)}"


def read_password(from_stdin: bool) -> str:
    """The new password: the first line of standard input (scripts), or asked twice without echo."""
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise UserError("No password on standard input / 标准输入中没有密码")
        return line
    if not sys.stdin.isatty():
        raise UserError(
            "There is no terminal to ask for the password; pipe it in with `--password-stdin` / "
            "没有可输入密码的终端，请使用 --password-stdin 从标准输入传入密码"
        )
    try:
        password = getpass.getpass("Password / 密码: ")
        with sentences():
            check_password_text(password)
        if getpass.getpass("Password again / 再次输入密码: ") != password:
            raise UserError("The two passwords differ; nothing was changed / 两次输入的密码不一致，未做任何更改")
    except EOFError:
        raise UserError("No password was given; nothing was changed / 未输入密码，未做任何更改") from None
    return password


def cmd_user_add(args: argparse.Namespace) -> int:
    accounts = open_accounts(args)
    with sentences():  # a bad name or role is said before the password is asked
        check_name(args.name)
        role = check_role(args.role)
    if not args.replace and any(user.name == args.name for user in accounts.users()):
        raise UserError(
            f"The user `{args.name}` already exists; use `--replace` to give it a new password and role / "
            f"用户“{args.name}”已存在，可用 --replace 更改其密码和角色"
        )
    password = read_password(args.password_stdin)
    with sentences():
        accounts.add_user(args.name, password, role, replace=args.replace)
    print(f"User `{args.name}` ({role_text(role)}) saved in {accounts.path} / 已保存用户“{args.name}”")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    accounts = open_accounts(args)
    users = accounts.users()
    if not users:
        print(
            f"No users in {accounts.path} yet; add one with `exhibit user add NAME --role operator` / "
            "还没有用户，请用 `exhibit user add 用户名 --role operator` 添加"
        )
        return 0
    print(f"Users in {accounts.path} / 用户:")
    for user in users:
        print(f"  {user.name:24} {user.role:9} {ROLE_ZH[user.role]}  {user.created}")
    return 0


def cmd_user_remove(args: argparse.Namespace) -> int:
    accounts = open_accounts(args)
    with sentences():
        accounts.remove_user(args.name)
    print(f"User `{args.name}` removed; their console sessions end / 已删除用户“{args.name}”，其会话随即失效")
    return 0


def cmd_token_add(args: argparse.Namespace) -> int:
    accounts = open_accounts(args)
    with sentences():
        token = accounts.add_token(args.name, args.role)
    # The token alone on standard output, so that a script can keep it: TOKEN=$(exhibit token add ...).
    print(token)
    print(
        f"API token `{args.name}` ({role_text(args.role)}) saved in {accounts.path}. It is shown only this once: "
        "copy it now and send it as `Authorization: Bearer TOKEN` / "
        f"已保存 API 令牌“{args.name}”。令牌只显示这一次，请立即复制",
        file=sys.stderr,
    )
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    accounts = open_accounts(args)
    tokens = accounts.tokens()
    if not tokens:
        print(
            f"No API tokens in {accounts.path} yet; add one with `exhibit token add NAME --role operator` / "
            "还没有 API 令牌，请用 `exhibit token add 名称 --role operator` 添加"
        )
        return 0
    print(f"API tokens in {accounts.path} (the tokens themselves are not kept) / API 令牌（令牌本身不保存）:")
    for token in tokens:
        print(f"  {token.name:24} {token.role:9} {ROLE_ZH[token.role]}  {token.created}")
    return 0


def cmd_token_remove(args: argparse.Namespace) -> int:
    accounts = open_accounts(args)
    with sentences():
        accounts.remove_token(args.name)
    print(f"API token `{args.name}` removed; it no longer works / 已删除 API 令牌“{args.name}”，该令牌随即失效")
    return 0


def _service_plan(args: argparse.Namespace) -> ServicePlan:
    path = resolve_exhibit_path(args.exhibit, EXHIBITS).resolve()
    exhibit = load_exhibit(path, build_registry())
    user = args.user or os.environ.get("SUDO_USER") or getpass.getuser()
    if user == "root":
        raise UserError(
            "An exhibit runs as an unprivileged user, never as root: give one with `--user NAME` "
            "(展项须以普通用户身份运行，请用 --user 指定)."
        )
    title = f"{exhibit.title.en} / {exhibit.title.zh}" if exhibit.title.zh else exhibit.title.en
    extra: list[str] = []
    if args.broker:
        broker_address(args.broker)
        extra += ["--broker", args.broker]
    if args.node:
        extra += ["--node", args.node]
    if args.role:
        extra += ["--role", args.role, "--takeover-after", f"{_takeover_after(args.takeover_after):g}"]
    return ServicePlan(
        exhibit.id, title, path, Path(sys.executable), ROOT / "launcher.py", user, args.simulate, tuple(extra)
    )


def _takeover_after(seconds: float) -> float:
    if not 0.5 <= seconds <= 60:
        raise UserError(
            f"`--takeover-after {seconds:g}` is not between 0.5 and 60 seconds / 接管等待时间须在 0.5 到 60 秒之间"
        )
    return seconds


def cmd_site(args: argparse.Namespace) -> int:
    """The nodes of a show network, or a synced GO sent to several of them."""
    import json

    import aiomqtt
    from pydantic import ValidationError

    from devices.mqtt.security import SecretMissing
    from devices.site.listing import read_nodes, send_go, table
    from engine.model import MqttSecurity

    host, port = broker_address(args.broker)
    prefix = args.site or "exhibit/site"
    security = None
    if args.username or args.password_file or args.password_env or args.tls:
        try:
            security = MqttSecurity.model_validate(
                {
                    "username": args.username,
                    "password_file": args.password_file,
                    "password_env": args.password_env,
                    "tls": args.tls,
                    "ca_file": args.ca_file,
                }
            )
        except ValidationError as exc:
            raise UserError(
                f"The broker login is not usable: {exc.errors()[0]['msg']} / 代理服务器登录设置有误"
            ) from None
    try:
        if args.site_command == "go":
            nodes = [n.strip() for n in args.nodes.split(",") if n.strip()]
            go = send_go(host, port, prefix, nodes, args.cue_list, args.cue, args.lead, security)
            result = asyncio.run(go)
            print(json.dumps(result, ensure_ascii=False, indent=2))
            failed = [r for r in result["reports"] if not r.get("ok")]
            return 1 if failed or not result["reports"] else 0
        if args.site_command == "report":
            import datetime as dt

            from content.report.site import site_html
            from devices.site.listing import read_analytics
            from engine.analytics.calendar import UTC_NAME, Calendar, system_zone

            summaries = asyncio.run(read_analytics(host, port, args.mqtt_prefix, security=security))
            out = writable_file(args.out, example="site-report.html")
            here = Calendar(system_zone() or UTC_NAME)  # the site's page is read where it is written
            out.write_text(site_html(summaries, dt.datetime.now(dt.UTC), here), encoding="utf-8")
            print(f"Site report ({len(summaries)} exhibits): {out} / 站点报告已写入 {out}")
            return 0
        nodes_seen = asyncio.run(read_nodes(host, port, prefix, security=security))
    except SecretMissing as exc:
        raise UserError(f"The broker login cannot be used: {exc} / 无法读取代理服务器密码") from None
    except (OSError, aiomqtt.MqttError) as exc:
        raise UserError(f"The broker at {args.broker} cannot be reached ({exc}) / 无法连接代理服务器") from None
    except LookupError as exc:
        raise UserError(f"{exc} / 站点内没有在线节点") from None
    if args.json:
        print(json.dumps(nodes_seen, ensure_ascii=False, indent=2))
    elif not nodes_seen:
        print(f"No node has announced itself under {prefix}/ on {args.broker} / 没有节点")
    else:
        print(table(nodes_seen))
    return 0


def _systemctl(*words: str) -> None:
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        raise UserError("systemctl is not on this computer: install the unit by hand (print it with --dry-run).")
    done = subprocess.run([systemctl, *words], capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(f"`systemctl {' '.join(words)}` failed: {(done.stderr or done.stdout).strip()}")


def cmd_service_install(args: argparse.Namespace) -> int:
    plan = _service_plan(args)
    text = unit_text(plan)
    if args.dry_run:
        print(text, end="")
        return 0
    folder = Path(args.unit_dir) if args.unit_dir else UNIT_DIR
    target = folder / plan.name
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(
            f"Cannot write `{target}`: {exc.strerror or exc}; run with sudo, or print it with --dry-run "
            "(无法写入服务文件，请使用 sudo)."
        ) from None
    print(f"wrote {target}")
    if args.unit_dir is None:  # the system's own folder: make it start now and at every boot
        _systemctl("daemon-reload")
        _systemctl("enable", "--now", plan.name)
        print(f"{plan.name} is enabled and started; `exhibit service status {args.exhibit}` shows how it runs")
    return 0


def cmd_service_uninstall(args: argparse.Namespace) -> int:
    exhibit = load_exhibit(resolve_exhibit_path(args.exhibit, EXHIBITS), build_registry())
    name = f"exhibit-{exhibit.id}.service"
    target = (Path(args.unit_dir) if args.unit_dir else UNIT_DIR) / name
    if not target.exists():
        raise UserError(f"`{target}` does not exist: the service is not installed (服务未安装).")
    if args.unit_dir is None:
        _systemctl("disable", "--now", name)
    target.unlink()
    if args.unit_dir is None:
        _systemctl("daemon-reload")
    print(f"removed {target}")
    return 0


def cmd_service_status(args: argparse.Namespace) -> int:
    exhibit = load_exhibit(resolve_exhibit_path(args.exhibit, EXHIBITS), build_registry())
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        raise UserError("systemctl is not on this computer: the exhibit does not run as a service here.")
    return subprocess.run([systemctl, "status", "--no-pager", f"exhibit-{exhibit.id}.service"]).returncode


def cmd_bench(args: argparse.Namespace) -> int:
    if not (ROOT / "tests" / "bench" / "runner.py").is_file():
        raise UserError(
            "The benchmarks are part of the source checkout (tests/bench/), not of the installed package: "
            "run `python launcher.py bench` in a clone of the project."
        )
    sys.path.insert(0, str(ROOT))
    from tests.bench.runner import main as bench_main

    only = frozenset(part.strip() for part in args.only.split(",")) if args.only else None
    printed = io.StringIO()
    with contextlib.redirect_stdout(Tee(sys.stdout, printed)):
        status = bench_main(json_output=args.json, quick=args.quick, soak_minutes=args.soak_minutes, only=only)
    if status == 0:  # the latest figures, for `exhibit diagnose`
        from engine.diagnose import save_bench_output

        save_bench_output(printed.getvalue(), bench_dir())
    return status


class Tee(io.TextIOBase):
    """Writes to the terminal and keeps a copy."""

    def __init__(self, *streams: TextIO) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def bench_dir() -> Path:
    """Where ``bench`` keeps its latest figures for ``diagnose``: ``$XDG_STATE_HOME/exhibit-controller/bench``."""
    return default_state_dir("-").parent / "bench"


def cmd_diagnose(args: argparse.Namespace) -> int:
    from engine.diagnose import default_bundle_name, human_size, write_bundle
    from engine.diagnose.collect import Sources

    path = resolve_exhibit_path(args.exhibit, EXHIBITS)
    exhibit_id, check_text = checked_for_diagnosis(path)
    state_dir = Path(args.state_dir).expanduser() if args.state_dir else default_state_dir(exhibit_id)
    out = writable_file(args.out or default_bundle_name(exhibit_id), example="support.tar.gz")
    sources = Sources(
        exhibit_file=path,
        exhibit_id=exhibit_id,
        state_dir=state_dir,
        project_root=ROOT,
        bench_dirs=(state_dir.parent / "bench", bench_dir()),
        unit_file=UNIT_DIR / f"exhibit-{exhibit_id}.service",
        check_text=check_text,
    )
    size = write_bundle(sources, out)
    where = out.resolve()
    print(
        f"Support bundle: {where} ({human_size(size)}), secrets redacted; send it to whoever supports the exhibit / "
        f"支持包已写入 {where}（{human_size(size)}，已隐去密码等机密），请发送给技术支持"
    )
    return 0


def cmd_qr(args: argparse.Namespace) -> int:
    """The audience page's join address, and its QR code (PNG and SVG) for signage."""
    from sensors.audience.join import join_url, write_qr
    from sensors.audience.model import AudienceSensorConfig

    path = resolve_exhibit_path(args.exhibit, EXHIBITS)
    exhibit = load_exhibit(path, build_registry())
    audiences = {name: c for name, c in exhibit.sensors.items() if isinstance(c, AudienceSensorConfig)}
    if not audiences:
        raise UserError(f"{exhibit.id} has no audience sensor (`kind: audience`) / 该展项没有观众互动传感器。")
    if args.sensor is not None and args.sensor not in audiences:
        raise UserError(f"{exhibit.id} has no audience sensor named `{args.sensor}` (it has: {', '.join(audiences)})")
    folder = Path(args.out).expanduser() if args.out else path.parent
    for name, config in audiences.items():
        if args.sensor is not None and name != args.sensor:
            continue
        url = args.url or join_url(config)
        print(f"{name}: {url}")
        for written in write_qr(url, folder, f"{exhibit.id}-{name}-qr"):
            print(f"wrote {written} / 已写入")
    return 0


def cmd_privacy(args: argparse.Namespace) -> int:
    """What the exhibit processes about visitors, where it goes and for how long; `--signage DIR` also writes the
    bilingual visitor signage (A4 HTML and PDF)."""
    from engine.analytics.disclosure import disclose, disclosure_text

    if args.signage is not None and not (args.contact or "").strip():
        raise UserError(
            'Signage must say whom visitors can contact: add --contact "TEXT" (a phone, an e-mail or an office) / '
            '告示须注明联系方式：请加上 --contact "联系方式"。'
        )
    path = resolve_exhibit_path(args.exhibit, EXHIBITS)
    exhibit = load_exhibit(path, build_registry())
    state_dir = Path(args.state_dir).expanduser() if args.state_dir else default_state_dir(exhibit.id)
    disclosure = disclose(exhibit, state_dir)
    print(disclosure_text(disclosure), end="")
    if args.signage is not None:
        from content.signage import sign_for, write_signage

        folder = Path(args.signage).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        writable_file(folder / f"{exhibit.id}-signage.html", example="signage.html")
        for written in write_signage(sign_for(disclosure, args.contact, args.venue), folder):
            print(f"wrote {written} / 已写入")
    return 0


def checked_for_diagnosis(path: Path) -> tuple[str, str]:
    """The exhibit's id and what `exhibit check` says of it; an invalid file is diagnosed too (its id read
    from the file's `id:` line, else its folder's name)."""
    try:
        exhibit = load_exhibit(path, build_registry())
    except ExhibitInvalid as invalid:
        problems = [str(problem) for problem in invalid.problems]
        text = "\n".join([*problems, f"{path}: {len(problems)} problem(s)"])
    except UserError as exc:
        text = f"error: {exc}"
    else:
        counts = f"{len(exhibit.sensors)} sensors, {len(exhibit.devices)} devices, {len(exhibit.mappings)} mappings"
        return exhibit.id, f"{path}: ok ({exhibit.id}: {counts})\n"
    try:
        found = re.search(r"(?m)^id:[ \t]*[\"']?([a-z0-9][a-z0-9-]*)", path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        found = None
    return (found.group(1) if found else path.parent.name), text + "\n"


def _analytics_state_dir(args: argparse.Namespace, exhibit_id: str) -> Path:
    """`report` and `export`: where the analytics database is (read only, never created)."""
    return Path(args.state_dir).expanduser() if args.state_dir else default_state_dir(exhibit_id)


def cmd_export(args: argparse.Namespace) -> int:
    from engine.analytics.calendar import exhibit_calendar
    from engine.analytics.export import Period, export, read_totals

    exhibit = load_exhibit(resolve_exhibit_path(args.exhibit, EXHIBITS), build_registry())
    period = Period.parse(args.date_from, args.date_to, exhibit_calendar(exhibit))
    totals = read_totals(_analytics_state_dir(args, exhibit.id), exhibit.id, period, simulated=args.simulated)
    formats = [word.strip() for word in args.format.split(",") if word.strip()]
    manifest = export(totals, exhibit.id, period, Path(args.out).expanduser(), k=exhibit.analytics.k, formats=formats)
    kind = " (SIMULATED data / 模拟数据)" if totals.simulated else ""
    files = ", ".join([*manifest["files"], manifest["schema"], "manifest.json"])
    print(f"Exported {files} to {args.out}{kind} / 已导出到 {args.out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from content.report import print_pdf, report_html
    from engine.analytics.calendar import exhibit_calendar
    from engine.analytics.export import Period, read_totals

    if args.site is not None:
        if args.exhibit or args.date_from or args.date_to or args.pdf or args.simulated:
            raise UserError(
                "--site reports the whole site's last 24 hours: leave out EXHIBIT, --from, --to, --pdf and --simulated"
                " / --site 报告整个站点最近 24 小时，请勿同时指定展项或日期"
            )
        if not args.broker:
            raise UserError("--site needs --broker mqtt://host:port / --site 需要 --broker")
        args.site_command, args.out = "report", args.out or "site-report.html"
        return cmd_site(args)
    if not (args.exhibit and args.date_from and args.date_to):
        raise UserError(
            "write `exhibit report EXHIBIT --from DATE --to DATE`, or `exhibit report --site --broker URL` for the "
            "whole site / 用法：exhibit report 展项 --from 日期 --to 日期"
        )
    exhibit = load_exhibit(resolve_exhibit_path(args.exhibit, EXHIBITS), build_registry())
    period = Period.parse(args.date_from, args.date_to, exhibit_calendar(exhibit))
    totals = read_totals(_analytics_state_dir(args, exhibit.id), exhibit.id, period, simulated=args.simulated)
    out = writable_file(args.out or f"{exhibit.id}-report-{period.first}-{period.last}.html", example="report.html")
    title = exhibit.title.en + (f" / {exhibit.title.zh}" if exhibit.title.zh else "")
    out.write_text(report_html(totals, exhibit.id, title, period, k=exhibit.analytics.k), encoding="utf-8")
    print(f"Report: {out} / 报告已写入 {out}")
    if args.pdf:
        pdf = out.with_suffix(".pdf")
        print_pdf(out, pdf)
        print(f"PDF: {pdf} / PDF 已写入 {pdf}")
    return 0


def broker_login(parser: argparse.ArgumentParser) -> None:
    """How a command that reads the site's broker logs in to it."""
    parser.add_argument("--username", metavar="NAME", help="log in to the broker as this user")
    parser.add_argument("--password-file", metavar="FILE", help="the broker password, read from this file")
    parser.add_argument(
        "--password-env", metavar="VAR", help="the broker password, read from this environment variable"
    )
    parser.add_argument("--tls", action="store_true", help="connect over TLS (mqtts)")
    parser.add_argument("--ca-file", metavar="FILE", help="CA certificate(s) to trust with --tls")


def analytics_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``report`` and ``export``: an exhibit's analytics over a period, after k-anonymity; ``report --site``: the
    whole site's last 24 hours (as ``site report``)."""
    for name in ("report", "export"):
        is_report = name == "report"
        command = commands.add_parser(
            name,
            help="an HTML (and PDF) report of visitor analytics"
            if is_report
            else "visitor analytics as CSV and Parquet",
        )
        # a site report names no exhibit and no dates: cmd_report checks what each form needs
        command.add_argument("exhibit", metavar="EXHIBIT", nargs="?" if is_report else None)
        first = "first day, YYYY-MM-DD (exhibit's time zone)"
        command.add_argument("--from", dest="date_from", required=not is_report, metavar="DATE", help=first)
        last = "last day, YYYY-MM-DD (included)"
        command.add_argument("--to", dest="date_to", required=not is_report, metavar="DATE", help=last)
        command.add_argument("--state-dir", metavar="DIR", help="the node's state folder (default: as for `run`)")
        command.add_argument(
            "--simulated", action="store_true", help="the data of `--simulate` runs, not real visitors"
        )
        if is_report:
            command.add_argument(
                "--out", metavar="FILE.html", help="where to write it (default: <id>-report-<dates>.html)"
            )
            command.add_argument("--pdf", action="store_true", help="also print it to a PDF beside it (needs Chromium)")
            command.add_argument(
                "--site",
                nargs="?",
                const="exhibit/site",
                metavar="PREFIX",
                help="instead: every exhibit of the show network, last 24 hours, side by side (needs --broker)",
            )
            command.add_argument("--broker", metavar="URL", help="with --site: mqtt://host:port of the site's broker")
            command.add_argument("--mqtt-prefix", default="exhibit", metavar="PREFIX", help="the exhibits' MQTT prefix")
            broker_login(command)
            command.set_defaults(handler=cmd_report)
        else:
            command.add_argument("--out", required=True, metavar="DIR", help="the folder to write the files into")
            command.add_argument(
                "--format", default="csv,parquet", metavar="csv,parquet", help="formats (default: both)"
            )
            command.set_defaults(handler=cmd_export)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="exhibit", description="Immersive exhibit controller.")
    top.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    top.add_argument("--log-format", default="text", choices=["text", "json"])
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="validate exhibit files (exit 0 valid, 2 invalid)")
    check.add_argument("exhibits", nargs="+", metavar="EXHIBIT", help="folder, exhibit.yaml, or name under exhibits/")
    check.add_argument("--hardware", action="store_true", help="also check that the cameras it names exist here")
    check.set_defaults(handler=cmd_check)

    run = commands.add_parser("run", help="run an exhibit until SIGINT/SIGTERM or --duration")
    run.add_argument("exhibit", metavar="EXHIBIT")
    run.add_argument(
        "--broker",
        metavar="URL",
        help="mqtt://host:port of a real broker (default: the exhibit's `mqtt.broker`, normally the embedded one)",
    )
    run.add_argument("--duration", type=float, metavar="SECONDS", help="stop cleanly after this long")
    run.add_argument("--headless", action="store_true", help="never open a window (for servers and CI)")
    run.add_argument("--simulate", action="store_true", help="simulated sensors instead of hardware")
    run.add_argument("--no-reload", action="store_true", help="do not reload the exhibit file when it changes")
    run.add_argument("--no-render", action="store_true", help="do not draw the exhibit's scene (control only)")
    run.add_argument(
        "--embedded-port",
        type=int,
        default=1883,
        metavar="PORT",
        help="port of the embedded broker (a free one is used if it is taken)",
    )
    run.add_argument("--console-host", metavar="HOST", help="address the web console listens on (over `console.host`)")
    run.add_argument(
        "--console-port", type=int, metavar="PORT", help="port of the web console (over `console.port`; 0: any free)"
    )
    run.add_argument("--no-console", action="store_true", help="do not serve the web console and its API")
    run.add_argument(
        "--accounts", metavar="FILE", help="users and API tokens (default: ~/.config/exhibit-controller/accounts.json)"
    )
    run.add_argument(
        "--audit-log",
        metavar="FILE",
        help="where control actions are recorded (default: ~/.local/state/exhibit-controller/<exhibit id>/audit.log)",
    )
    run.add_argument(
        "--state-dir",
        metavar="DIR",
        help="what must outlive a restart (show state, crash record, logs) "
        "(default: ~/.local/state/exhibit-controller/<exhibit id>)",
    )
    network = run.add_argument_group("show network (several computers, one broker)")
    network.add_argument("--node", metavar="NAME", help="this computer's name in the show network (default: host name)")
    network.add_argument(
        "--role",
        choices=["primary", "backup"],
        help="with a backup computer: this one drives the devices (primary) or tracks and takes over (backup)",
    )
    network.add_argument(
        "--site", metavar="PREFIX", help="topic prefix of the show network (default: <mqtt prefix>/site)"
    )
    network.add_argument(
        "--takeover-after",
        type=float,
        default=TAKEOVER_AFTER,
        metavar="SECONDS",
        help=f"a backup takes over when the primary's heartbeat is silent this long (default {TAKEOVER_AFTER:g})",
    )
    run.set_defaults(handler=cmd_run)

    studio = commands.add_parser(
        "studio",
        help="edit, check, simulate and preview an exhibit in the browser (simulated sensors, this computer only)",
    )
    studio.add_argument("exhibit", metavar="EXHIBIT")
    studio.add_argument(
        "--port", type=int, metavar="PORT", help="port of the studio (default 8090, or any free one if it is taken)"
    )
    studio.add_argument("--broker", metavar="URL", help="mqtt://host:port of a real broker (default: the embedded one)")
    studio.add_argument("--embedded-port", type=int, default=0, metavar="PORT", help="port of the embedded broker")
    studio.add_argument("--no-render", action="store_true", help="do not draw the scene (no preview)")
    studio.add_argument("--duration", type=float, metavar="SECONDS", help="stop cleanly after this long")
    studio.add_argument("--accounts", metavar="FILE", help="users and API tokens (default: as for `run`)")
    studio.add_argument("--audit-log", metavar="FILE", help="where studio actions are recorded (default: as for `run`)")
    studio.add_argument("--state-dir", metavar="DIR", help="the node's state folder (default: as for `run`)")
    studio.set_defaults(handler=cmd_studio)

    service = commands.add_parser("service", help="run an exhibit as a systemd service: install, uninstall, status")
    service_commands = service.add_subparsers(dest="service_command", required=True, metavar="ACTION")
    install = service_commands.add_parser(
        "install", help="write (and enable) the systemd unit: at boot, restarted on failure, watchdog, hardened"
    )
    install.add_argument("exhibit", metavar="EXHIBIT")
    install.add_argument("--user", metavar="NAME", help="the unprivileged user it runs as (default: you)")
    install.add_argument("--simulate", action="store_true", help="simulated sensors (a demonstration machine)")
    install.add_argument("--dry-run", action="store_true", help="print the unit, change nothing")
    install.add_argument("--unit-dir", metavar="DIR", help="write the unit here and leave systemctl alone")
    install.add_argument("--broker", metavar="URL", help="mqtt://host:port of the room's or site's broker")
    install.add_argument("--node", metavar="NAME", help="this computer's name in the show network")
    install.add_argument("--role", choices=["primary", "backup"], help="with a backup computer: this one's role")
    install.add_argument("--takeover-after", type=float, default=TAKEOVER_AFTER, metavar="SECONDS")
    install.set_defaults(handler=cmd_service_install)
    uninstall = service_commands.add_parser("uninstall", help="stop, disable and remove the unit")
    uninstall.add_argument("exhibit", metavar="EXHIBIT")
    uninstall.add_argument("--unit-dir", metavar="DIR", help="remove it from here and leave systemctl alone")
    uninstall.set_defaults(handler=cmd_service_uninstall)
    status = service_commands.add_parser("status", help="`systemctl status` of the exhibit's service")
    status.add_argument("exhibit", metavar="EXHIBIT")
    status.set_defaults(handler=cmd_service_status)

    site = commands.add_parser("site", help="the show network: every node with its health, or a synced GO")
    site.add_argument("--broker", required=True, metavar="URL", help="mqtt://host:port of the site's broker")
    site.add_argument("--site", metavar="PREFIX", help="topic prefix of the show network (default: exhibit/site)")
    site.add_argument("--json", action="store_true", help="print the nodes' announcements as JSON")
    broker_login(site)
    site.set_defaults(handler=cmd_site, site_command="list")
    site_commands = site.add_subparsers(dest="site_command", metavar="ACTION")
    go = site_commands.add_parser("go", help="GO on several nodes at once: they start at the same site time")
    go.add_argument("--nodes", required=True, metavar="A,B", help="node names, comma separated, or * for all")
    go.add_argument("--cue-list", metavar="NAME", help="the cue list on each node (optional where it has one)")
    go.add_argument("--cue", metavar="ID", help="fire this cue instead of the standby one")
    go.add_argument("--lead", type=float, default=1.0, metavar="SECONDS", help="from now to the start (default 1)")
    go.set_defaults(handler=cmd_site)
    site_report = site_commands.add_parser(
        "report", help="every exhibit's visitor figures of the last 24 hours, side by side, as one HTML page"
    )
    site_report.add_argument("--out", default="site-report.html", metavar="FILE.html", help="where to write it")
    site_report.add_argument("--mqtt-prefix", default="exhibit", metavar="PREFIX", help="the exhibits' MQTT prefix")
    site_report.set_defaults(handler=cmd_site)

    shot = commands.add_parser("shot", help="render the exhibit's scene offscreen with simulated visitors to a PNG")
    shot.add_argument("exhibit", metavar="EXHIBIT")
    shot.add_argument("--out", required=True, metavar="FILE.png", help="where to write the picture")
    shot.add_argument("--at", type=float, default=5.0, metavar="SECONDS", help="how far into the exhibit (default 5)")
    shot.add_argument("--size", metavar="WxH", help="picture size (default: the scene's first output)")
    shot.set_defaults(handler=cmd_shot)

    schema = commands.add_parser("schema", help="write exhibits/exhibit.schema.json")
    schema.add_argument("--check", action="store_true", help="only check that it is up to date")
    schema.set_defaults(handler=cmd_schema)

    new = commands.add_parser(
        "new",
        help="make a new exhibit folder under exhibits/ from a template",
        description="Templates: " + "; ".join(f"{t.name}: {t.summary}" for t in TEMPLATES),
    )
    new.add_argument("name", help="the new exhibit's folder and id (lower-case letters, digits, '-')")
    new.add_argument("--template", required=True, choices=[t.name for t in TEMPLATES])
    new.add_argument("--into", type=Path, metavar="DIR", help="make it in DIR instead of exhibits/")
    new.set_defaults(handler=cmd_new)
    sound = commands.add_parser("sound", help="sound on this computer: the outputs OpenAL can play on")
    sound_commands = sound.add_subparsers(dest="sound_command", required=True, metavar="ACTION")
    outputs = sound_commands.add_parser("outputs", help="list the sound outputs, for `audio.outputs`")
    outputs.add_argument("--driver", help="OpenAL Soft back-end to ask: alsa, pulse, null (default: its own choice)")
    outputs.set_defaults(handler=cmd_sound_outputs)

    listing = commands.add_parser("list", help="list the exhibits under exhibits/")
    listing.set_defaults(handler=cmd_list)

    model_list = commands.add_parser("models", help="list pose models; install the official ones")
    model_list.add_argument(
        "--install",
        nargs="+",
        choices=["lite", "full", "heavy"],
        metavar="NAME",
        help="download official bundles (lite, full, heavy) into the user model folder",
    )
    model_list.set_defaults(handler=cmd_models)

    rec = commands.add_parser("record", help="record landmarks (never images) from a camera or a video")
    where = rec.add_mutually_exclusive_group(required=True)
    where.add_argument("--camera", help="camera index or device path")
    where.add_argument("--video", help="video file")
    rec.add_argument("--out", required=True, help="recording file (.jsonl or .jsonl.gz)")
    rec.add_argument("--duration", type=float, help="seconds to record")
    rec.add_argument("--frames", type=int, help="frames to record")
    rec.add_argument("--num-poses", type=int, default=4, help="most people per frame")
    rec.add_argument("--model", default="full", help="lite, full, heavy or a .task file")
    rec.set_defaults(handler=cmd_record)

    bench = commands.add_parser("bench", help="measure performance figures against baselines")
    bench.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    bench.add_argument("--quick", action="store_true", help="fewer samples, a 90 s soak (a smoke run)")
    bench.add_argument(
        "--only",
        metavar="GROUPS",
        help="comma-separated groups to run: osc, console, inputs, logic, devices, render, site, studio, sound, "
        "audience, pose, analytics, soak (default: all)",
    )
    bench.add_argument(
        "--soak-minutes", type=float, metavar="MINUTES", help="how long the memory soak runs (default 10; 1.5 quick)"
    )
    bench.set_defaults(handler=cmd_bench)

    diagnose = commands.add_parser(
        "diagnose",
        help="write a support bundle (versions, exhibit file, recent logs, health history), secrets redacted",
    )
    diagnose.add_argument("exhibit", metavar="EXHIBIT")
    diagnose.add_argument(
        "--out", metavar="FILE", help="where to write it (default: exhibit-diagnose-<id>-<time>.tar.gz here)"
    )
    diagnose.add_argument("--state-dir", metavar="DIR", help="the node's state folder (default: as for `run`)")
    diagnose.set_defaults(handler=cmd_diagnose)

    qr = commands.add_parser("qr", help="the audience page's join address and its QR code (PNG, SVG) for signage")
    qr.add_argument("exhibit", metavar="EXHIBIT")
    qr.add_argument("--sensor", metavar="NAME", help="only this audience sensor (default: each)")
    qr.add_argument("--url", help="the address phones use, if not the one the exhibit gives or this computer's")
    qr.add_argument("--out", metavar="DIR", help="where the PNG and SVG go (default: the exhibit's folder)")
    qr.set_defaults(handler=cmd_qr)

    privacy = commands.add_parser(
        "privacy", help="what the exhibit processes about visitors, where it goes, for how long; visitor signage"
    )
    privacy.add_argument("exhibit", metavar="EXHIBIT")
    privacy.add_argument("--signage", metavar="DIR", help="also write DIR/<id>-signage.html and .pdf (A4)")
    privacy.add_argument("--contact", metavar="TEXT", help="whom visitors can ask (phone, e-mail, office)")
    privacy.add_argument("--venue", metavar="NAME", help="the venue's name, printed on the signage")
    privacy.add_argument("--state-dir", metavar="DIR", help="the node's state folder (default: as for `run`)")
    privacy.set_defaults(handler=cmd_privacy)

    account_commands(commands)
    analytics_commands(commands)
    return top


def account_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``user add|list|remove`` and ``token add|list|remove``."""
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--accounts",
        metavar="FILE",
        help="the accounts file (default: $EXHIBIT_ACCOUNTS, else ~/.config/exhibit-controller/accounts.json)",
    )
    roles = "viewer|operator|admin"

    user = commands.add_parser("user", help="console users: add, list, remove")
    user_commands = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = user_commands.add_parser("add", parents=[where], help="add a user (the password is asked twice)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", default="operator", metavar=roles, help="what the user may do (default: operator)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.add_argument("--replace", action="store_true", help="give an existing user a new password and role")
    add.set_defaults(handler=cmd_user_add)
    user_commands.add_parser("list", parents=[where], help="list the users").set_defaults(handler=cmd_user_list)
    remove = user_commands.add_parser("remove", parents=[where], help="remove a user (their sessions end)")
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(handler=cmd_user_remove)

    token = commands.add_parser("token", help="API tokens for machines: add, list, remove")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    add = token_commands.add_parser("add", parents=[where], help="add a token (printed once)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", default="operator", metavar=roles, help="what the token may do (default: operator)")
    add.set_defaults(handler=cmd_token_add)
    token_commands.add_parser("list", parents=[where], help="list the tokens").set_defaults(handler=cmd_token_list)
    remove = token_commands.add_parser("remove", parents=[where], help="remove a token (it stops working)")
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(handler=cmd_token_remove)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    try:
        return int(args.handler(args))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ExhibitInvalid as invalid:
        for problem in invalid.problems:
            print(problem, file=sys.stderr)
        print("The exhibit is not valid; nothing was started.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `exhibit list | head -1`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:  # a file or port the user named, refused by the system
        print(f"error: {os_sentence(exc)}", file=sys.stderr)
        return 1


def os_sentence(exc: OSError) -> str:
    """An operating-system error as one sentence a user can act on."""
    where = f" `{exc.filename}`" if exc.filename else ""
    if exc.errno == errno.EADDRINUSE:
        return "A port this exhibit needs is already in use; stop the other program or choose another port."
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"Permission denied{where and ' for' + where}."
    if exc.errno == errno.ENOENT:
        return f"No such file or folder{where and ':' + where}."
    if exc.errno == errno.ENOSPC:
        return "The disk is full."
    return f"{exc.strerror or exc}{where and ':' + where}."


if __name__ == "__main__":
    sys.exit(main())
