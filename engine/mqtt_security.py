"""MQTT authentication and TLS settings of an exhibit: secrets come from the
environment or a file, never from the exhibit file itself."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

Credentials = tuple[str | None, str | None, ssl.SSLContext | None]


class SecretMissing(Exception):
    """A secret named in the exhibit's ``mqtt.security`` block cannot be read."""


class MqttSecurity(BaseModel):
    """Who the link is to the broker, and how it checks the broker: the exhibit file
    names where secrets live (an environment variable or a file), never the secrets.

    Configured like ``engine.model.Strict`` but not derived from it: ``engine.model``
    imports this class for ``MqttSettings.security``, and the reverse import would be a cycle.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    username: str | None = Field(None, description="MQTT user name.")
    password_env: str | None = Field(None, description="Name of the environment variable holding the password.")
    password_file: str | None = Field(None, description="File holding the password (relative to the exhibit file).")
    tls: bool = Field(False, description="Connect over TLS.")
    ca_file: str | None = Field(None, description="CA certificate(s) to trust (default: the system's).")
    cert_file: str | None = Field(None, description="Client certificate, for brokers that require one.")
    key_file: str | None = Field(None, description="Private key of the client certificate (if not in `cert_file`).")
    insecure: bool = Field(False, description="Skip the broker host name check. For tests only, never on site.")

    @model_validator(mode="after")
    def _consistent(self) -> MqttSecurity:
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("give the password through `password_env` or `password_file`, not both")
        if (self.password_env or self.password_file) and self.username is None:
            raise ValueError("a password needs a `username`")
        tls_only = [n for n in ("ca_file", "cert_file", "key_file", "insecure") if getattr(self, n)]
        if tls_only and not self.tls:
            raise ValueError(f"{', '.join(f'`{n}`' for n in tls_only)} only apply with `tls: true`")
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("`key_file` needs a `cert_file`")
        return self

    def resolve(self, base: Path | None = None) -> Credentials:
        """``(username, password, tls_context)``, reading the secret now so a missing one
        stops the start-up with one clear sentence instead of a refused connection later."""
        return self.username, self._password(base), self._tls_context(base)

    def _password(self, base: Path | None) -> str | None:
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if not value:
                raise SecretMissing(f"the MQTT password environment variable `{self.password_env}` is not set")
            return value
        if self.password_file is not None:
            path = _path(self.password_file, base)
            try:
                value = path.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise SecretMissing(f"the MQTT password file {path} cannot be read ({exc.strerror})") from None
            if not value:
                raise SecretMissing(f"the MQTT password file {path} is empty")
            return value
        return None

    def _tls_context(self, base: Path | None) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        try:
            if self.ca_file is not None:
                context.load_verify_locations(cafile=str(_path(self.ca_file, base)))
            if self.cert_file is not None:
                key = str(_path(self.key_file, base)) if self.key_file else None
                context.load_cert_chain(str(_path(self.cert_file, base)), key)
        except (OSError, ssl.SSLError) as exc:
            raise SecretMissing(f"the MQTT TLS files cannot be loaded ({exc})") from None
        if self.insecure:
            context.check_hostname = False  # paho follows the context: no host name check
        return context


def _path(name: str, base: Path | None) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() or base is None else base / path
