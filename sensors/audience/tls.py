"""TLS for the audience page (phones share their motion only with a secure page): a certificate and its key, PEM
files in the exhibit's folder, loaded into a server context that speaks TLS 1.2 or later, as the console's is."""

from __future__ import annotations

import ssl
from pathlib import Path


class TlsFilesError(Exception):
    """The certificate or its key cannot be used; the message says why, in a few words."""


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context holding ``cert`` (a chain: the certificate first, then any intermediates) and ``key``.
    Raises :class:`TlsFilesError` when a file is missing or unreadable, or the two do not go together."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise TlsFilesError(str(reason)) from None
    return context
