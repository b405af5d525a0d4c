"""The systemd unit that runs an exhibit as a service: started at boot once the network is up, restarted when
it fails, fed by the exhibit's own watchdog (:mod:`engine.watchdog`), as an unprivileged user behind systemd's
hardening options. ``exhibit service install`` writes it; this module only makes the text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

UNIT_DIR = Path("/etc/systemd/system")
WATCHDOG_SEC = 10
"""systemd restarts the exhibit when its watchdog has not been fed for this long (it is fed every 5 s)."""


@dataclass(frozen=True)
class ServicePlan:
    exhibit_id: str
    title: str
    exhibit_file: Path
    python: Path
    launcher: Path
    user: str
    simulate: bool = False
    extra: tuple[str, ...] = ()
    """More words for ``run``: the broker, the node's name and role in a show network."""

    @property
    def name(self) -> str:
        return f"exhibit-{self.exhibit_id}.service"

    @property
    def state_dir(self) -> str:
        """Under /var/lib (systemd's StateDirectory=), where the service may write: its show state for crash
        recovery, crash record, log files, health history and audit log."""
        return f"exhibit-controller/{self.exhibit_id}"


def _quote(value: str | Path) -> str:
    """A systemd command-line word: quoted when it holds anything but plain path characters."""
    text = str(value)
    return text if re.fullmatch(r"[\w@%+=:,./-]+", text) else '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unit_text(plan: ServicePlan) -> str:
    folder = plan.exhibit_file.parent
    run: list[str | Path] = [plan.python, plan.launcher, "run", plan.exhibit_file, "--headless"]
    run += ["--state-dir", f"/var/lib/{plan.state_dir}"]
    if plan.simulate:
        run.append("--simulate")
    run += list(plan.extra)
    return f"""\
# Written by `exhibit service install`; `exhibit service uninstall {plan.exhibit_id}` removes it.
[Unit]
Description=Exhibit {plan.exhibit_id}: {plan.title}
After=network-online.target
Wants=network-online.target
# Ten failed starts in five minutes: systemd stops trying, and `systemctl status` says so.
StartLimitIntervalSec=300
StartLimitBurst=10

[Service]
Type=notify
NotifyAccess=main
ExecStart={" ".join(_quote(word) for word in run)}
WorkingDirectory={_quote(folder)}
User={plan.user}
SupplementaryGroups=dialout video
Restart=on-failure
RestartSec=2
WatchdogSec={WATCHDOG_SEC}
TimeoutStartSec=120
# SIGINT is the exhibit's clean stop: every device to its safe state first.
KillSignal=SIGINT
TimeoutStopSec=30
Environment=PYTHONUNBUFFERED=1
# Secrets an exhibit file names by environment variable (mqtt.security.password_env), kept out of the unit:
# one NAME=value per line, readable by root only. The leading "-": the file may not exist.
EnvironmentFile=-/etc/exhibit-controller/{plan.exhibit_id}.env
UMask=0027
StateDirectory={plan.state_dir}
# Caches (Mesa's shaders, Panda3D's models) go here, not into the read-only home.
CacheDirectory={plan.state_dir}
Environment=XDG_CACHE_HOME=/var/cache/{plan.state_dir}
# Hardening: a read-only system, the exhibit folder (its history and uploads) and the state directory writable.
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
ReadWritePaths={_quote(folder)}
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
SystemCallArchitectures=native
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK

[Install]
WantedBy=multi-user.target
"""
