"""Secrets out of text before it goes into a support bundle, counted by kind.

What is replaced by ``[REDACTED]`` (the text around it is kept, so the line still reads):

- ``user:password@`` in URLs (``mqtt://``, ``https://``...): the password;
- ``Authorization:`` headers and bare ``Bearer``/``Basic`` credentials; ``Cookie:``/``Set-Cookie:`` values;
- secrets in URL queries and fragments: the console's one-time login links (``login?token=...``) and
  ``token``, ``key``, ``password``, ``secret``, ``session``... parameters;
- the value of any key named like a secret (``password``, ``passwd``, ``passphrase``, ``secret``, ``token``,
  ``credential``, ``cookie``, ``authorization``, ``psk``, or ending in ``key``: ``api_key``, ``private-key``) in
  YAML (``key: value``), JSON (``"key": "value"``) and ``key=value`` text; keys ending in ``_env``, ``_file`` or
  ``_path`` name where a secret lives (the exhibit file's ``password_env``), not the secret, and are kept;
- embedded pictures (``data:image/...;base64,...``), which are never sent.
"""

from __future__ import annotations

import re
from collections import Counter

MASK = "[REDACTED]"
SECRET_WORDS = ("password", "passwd", "passphrase", "secret", "token", "credential", "cookie", "authorization", "psk")
DONE = (MASK[:-1], "[PICTURE")
EMPTY = ("", "null", "~", "None")
WHERE_NOT_WHAT = ("_env", "_file", "_path", "-env", "-file", "-path")

_KEY = r"[A-Za-z_][\w.-]*"
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@\"'<>]+:)(?P<secret>[^\s/@\"'<>]+)(?=@)")
_AUTHORIZATION = re.compile(
    r"(?P<head>\b(?:Proxy-)?Authorization\b[\"']?\s*[:=]\s*[\"']?(?:(?:Bearer|Basic|Digest|Token)\s+)?)"
    r"(?P<secret>[^\s\"',;]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<head>\b(?:Bearer|Basic)\s+)(?P<secret>[A-Za-z0-9._~+/=-]{8,})")
_COOKIE = re.compile(r"(?P<head>\b(?:Set-)?Cookie\b[\"']?\s*[:=]\s*[\"']?)(?P<secret>[^\r\n\"']+)", re.IGNORECASE)
_QUERY = re.compile(
    r"(?P<head>[?&#;](?:[\w.-]*(?:token|key|password|passwd|secret|session|sig|signature|auth|code)[\w.-]*)=)"
    r"(?P<secret>[^&#\s\"'<>]+)",
    re.IGNORECASE,
)
_DATA_URI = re.compile(r"(?P<head>data:(?:image|video)/[\w.+-]+;base64,)(?P<secret>[A-Za-z0-9+/=\s]{16,})")
_JSON_PAIR = re.compile(rf"(?P<q>[\"'])(?P<key>{_KEY})(?P=q)\s*:\s*(?P<value>\"(?:[^\"\\]|\\.)*\"|[^,{{}}\[\]\s]+)")
_YAML_PAIR = re.compile(
    rf"^[ \t]*(?:-[ \t]+)?[\"']?(?P<key>{_KEY})[\"']?[ \t]*:[ \t]+"
    r"(?P<value>[^\s#|>&*!{\[][^\n]*?)(?=[ \t]+#|[ \t]*$)",
    re.MULTILINE,
)
_FLOW_PAIR = re.compile(rf"[{{,][ \t]*(?P<key>{_KEY})[ \t]*:[ \t]+(?P<value>\"[^\"]*\"|'[^']*'|[^,}}\n]+)")
_FREE_PAIR = re.compile(
    rf"\b(?P<key>{_KEY})[\"']?[ \t]*(?:=|:(?=[ \t]))[ \t]*(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&\"'{{}}\[\]]+)"
)
HANDLED_KEYS = ("authorization", "proxy-authorization", "cookie", "set-cookie")
"""Their values are replaced by the header patterns, which keep the scheme (``Bearer``)."""


def secret_key(name: str) -> bool:
    """Whether a key's value is a secret: ``password``, ``mqtt_token``, ``api-key``, ``privateKey``; not
    ``password_file``, ``keyframes`` or ``keys``."""
    lowered = name.lower()
    if lowered.endswith(WHERE_NOT_WHAT):
        return False
    return any(word in lowered for word in SECRET_WORDS) or lowered.endswith("key") or "apikey" in lowered


class Redactor:
    """Replaces secrets in text, and counts what it replaced by kind (for the bundle's manifest)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def text(self, text: str) -> str:
        """``text`` with every secret replaced (see the module's docstring)."""
        text = self._sub(_DATA_URI, "embedded picture", text, mask="[PICTURE REMOVED]")
        text = self._sub(_URL_PASSWORD, "password in a URL", text)
        text = self._sub(_AUTHORIZATION, "authorization header", text)
        text = self._sub(_BEARER, "bearer credential", text)
        text = self._sub(_COOKIE, "cookie", text)
        text = self._sub(_QUERY, "secret in a link", text)
        for pattern in (_JSON_PAIR, _YAML_PAIR, _FLOW_PAIR, _FREE_PAIR):
            text = self._pairs(pattern, text)
        return text

    def _sub(self, pattern: re.Pattern[str], kind: str, text: str, mask: str = MASK) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group("secret") == mask:
                return match.group(0)
            self.counts[kind] += 1
            return match.group("head") + mask

        return pattern.sub(replace, text)

    def _pairs(self, pattern: re.Pattern[str], text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            value = match.group("value")
            key = match.group("key")
            if (
                not secret_key(key)
                or key.lower() in HANDLED_KEYS
                or value.lstrip("\"'").startswith(DONE)
                or value.strip("\"'") in EMPTY
            ):
                return match.group(0)
            self.counts["value of a secret key"] += 1
            start = match.start("value") - match.start()
            quoted = value[:1] in "\"'" and value[-1:] == value[:1] and len(value) > 1
            return match.group(0)[:start] + (f"{value[0]}{MASK}{value[0]}" if quoted else MASK)

        return pattern.sub(replace, text)
