"""Self-signed certificates made by the real openssl, for the exhibit's HTTPS servers in tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import require_tool


def self_signed(folder: Path, stem: str, names: tuple[str, ...] = ("127.0.0.1", "localhost")) -> tuple[Path, Path]:
    """``<stem>.crt`` and ``<stem>.key`` in ``folder``: a certificate for ``names`` (IP addresses or host names),
    valid two days."""
    key, crt = folder / f"{stem}.key", folder / f"{stem}.crt"
    alt = ",".join(f"IP:{name}" if name[0].isdigit() else f"DNS:{name}" for name in names)
    subprocess.run(
        [require_tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(crt), "-subj", f"/CN={names[0]}", "-addext", f"subjectAltName={alt}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return crt, key
