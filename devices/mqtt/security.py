"""MQTT credentials and TLS: the secrets an exhibit's ``mqtt.security`` names are read here, from
the environment or a file (never from the exhibit file), when the link is built, so a missing one
stops the start-up with one clear sentence instead of a refused connection later."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from engine.model import MqttSecurity

Credentials = tuple[str | None, str | None, ssl.SSLContext | None]


class SecretMissing(Exception):
    """A secret named in the exhibit's ``mqtt.security`` block cannot be read."""


def resolve_credentials(security: MqttSecurity, base: Path | None = None) -> Credentials:
    """``(username, password, tls_context)``."""
    return security.username, _password(security, base), _tls_context(security, base)


def _password(security: MqttSecurity, base: Path | None) -> str | None:
    if security.password_env is not None:
        value = os.environ.get(security.password_env)
        if not value:
            raise SecretMissing(f"the MQTT password environment variable `{security.password_env}` is not set")
        return value
    if security.password_file is not None:
        path = _path(security.password_file, base)
        try:
            value = path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise SecretMissing(f"the MQTT password file {path} cannot be read ({exc.strerror})") from None
        if not value:
            raise SecretMissing(f"the MQTT password file {path} is empty")
        return value
    return None


def _tls_context(security: MqttSecurity, base: Path | None) -> ssl.SSLContext | None:
    if not security.tls:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    try:
        if security.ca_file is not None:
            context.load_verify_locations(cafile=str(_path(security.ca_file, base)))
        if security.cert_file is not None:
            key = str(_path(security.key_file, base)) if security.key_file else None
            context.load_cert_chain(str(_path(security.cert_file, base)), key)
    except (OSError, ssl.SSLError) as exc:
        raise SecretMissing(f"the MQTT TLS files cannot be loaded ({exc})") from None
    if security.insecure:
        context.check_hostname = False  # paho follows the context: no host name check
    return context


def _path(name: str, base: Path | None) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() or base is None else base / path
