"""The exhibit file's ``console:`` and ``control:`` sections: where operators reach the running show."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, field_validator

from engine.model import Strict


class TlsSettings(Strict):
    cert: Path = Field(description="PEM certificate (chain) file, relative to the exhibit's folder.")
    key: Path = Field(description="PEM private key file, relative to the exhibit's folder.")


class ConsoleSettings(Strict):
    enabled: bool = Field(True, description="Serve the web console and its HTTP/WebSocket API.")
    host: str = Field(
        "127.0.0.1",
        description="Address to listen on. Anything but loopback needs an account (`exhibit user add NAME`).",
    )
    port: int = Field(8080, ge=0, le=65535, description="TCP port (0: any free port).")
    tls: TlsSettings | None = Field(None, description="Serve HTTPS with this certificate and key.")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Extra host names the console answers to (its address and `localhost` always work); "
        "others are refused, against DNS rebinding.",
    )


class OscControlSettings(Strict):
    enabled: bool = Field(True, description="Accept QLab-style OSC control.")
    host: str = Field("127.0.0.1", description="Address to listen on (UDP and TCP).")
    port: int = Field(53000, ge=0, le=65535, description="UDP and TCP port (QLab's is 53000; 0: any free port).")
    tcp: bool = Field(True, description="Also accept OSC over TCP, SLIP-framed (OSC 1.1), as QLab does.")
    passcode: str | None = Field(
        None, description="Clients must send `/connect <passcode>` before anything else; none: no passcode."
    )
    allow: list[str] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        description="Networks that may send control (CIDR); others are counted and ignored.",
    )

    @field_validator("allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"`{network}` is not a network (write it like 192.168.1.0/24)") from None
        return value


class MqttControlSettings(Strict):
    enabled: bool = Field(
        True, description="Take commands on `<prefix>/<id>/control/<command>` and keep the show state retained."
    )


class ControlSettings(Strict):
    osc: OscControlSettings = Field(default_factory=OscControlSettings)  # type: ignore[arg-type]
    mqtt: MqttControlSettings = Field(default_factory=MqttControlSettings)  # type: ignore[arg-type]
    show_lock: bool = Field(
        False, description="Start with the show lock on: reload and editing are refused until an admin unlocks."
    )
