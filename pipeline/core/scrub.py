"""One scrubber for every error text before it is printed, logged or written.

Servers echo requests in their error bodies (an ``Authorization`` header, a
token request's form), exceptions carry URLs with signed query strings
(Planetary Computer SAS tokens, S3 presigned URLs), and OAuth libraries put
tokens in their messages. Everything that reaches stderr, a log record or a
file such as ``detections/failed.json`` passes through :func:`scrub`, which
removes:

- ``Authorization`` / ``Proxy-Authorization`` header values and ``Bearer`` or
  ``Basic`` credentials wherever they appear;
- JSON Web Tokens (``eyJ...``, the form of OAuth access tokens);
- values of secret-named fields in JSON, form bodies and query strings
  (``access_token``, ``client_secret``, ``password``, ``sig``, ``X-Amz-Signature``...);
- user:password in URLs;
- the literal values of secrets known to the process (``SH_CLIENT_SECRET``,
  ``SH_CLIENT_ID``'s secret counterpart, anything passed to :func:`register_secret`).
"""

from __future__ import annotations

import logging
import os
import re

REDACTED = "[redacted]"

#: Field names whose values are secrets, in JSON (``"name": "value"``), forms and
#: query strings (``name=value``). Compared case-insensitively.
SECRET_FIELDS = (
    "access_token", "refresh_token", "id_token", "token", "client_secret", "password", "passwd", "secret",
    "api_key", "apikey", "key", "sig", "signature", "x-amz-signature", "x-amz-credential",
    "x-amz-security-token", "x-goog-signature", "code", "assertion",
)
_ENV_SECRETS = ("SH_CLIENT_SECRET", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "PC_SDK_SUBSCRIPTION_KEY")
_registered: set[str] = set()

_FIELDS = "|".join(re.escape(f) for f in sorted(SECRET_FIELDS, key=len, reverse=True))
_PATTERNS = [
    # Authorization: Bearer abc / "Authorization": "Basic abc" / authorization=...
    (re.compile(r"(?i)((?:proxy-)?authori[sz]ation['\"]?\s*[:=]\s*['\"]?)[^'\"\r\n,}]+"), r"\1" + REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"), r"\1 " + REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    # "client_secret": "abc"  /  'token': 'abc'
    (re.compile(r"(?i)(['\"](?:" + _FIELDS + r")['\"]\s*:\s*['\"])[^'\"]*"), r"\1" + REDACTED),
    # client_secret=abc in forms and query strings (stops at &, whitespace, quotes)
    (re.compile(r"(?i)(?<![A-Za-z0-9_-])((?:" + _FIELDS + r")=)[^&\s'\"<>,;)]+"), r"\1" + REDACTED),
    # scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), r"\1" + REDACTED + "@"),
]


def register_secret(value: str | None) -> None:
    """Remember a secret value (a client secret read from a profile) so it is scrubbed too."""
    if value and len(value) >= 4:
        _registered.add(str(value))


def _known_secrets() -> list[str]:
    values = set(_registered)
    for name in _ENV_SECRETS:
        v = os.environ.get(name)
        if v and len(v) >= 4:
            values.add(v)
    return sorted(values, key=len, reverse=True)


def scrub(text: object) -> str:
    """``text`` with tokens, credentials and secret query values replaced by ``[redacted]``."""
    out = str(text)
    for secret in _known_secrets():
        out = out.replace(secret, REDACTED)
    for pattern, repl in _PATTERNS:
        out = pattern.sub(repl, out)
    return out


def one_line(text: object, limit: int = 600) -> str:
    """Scrubbed ``text`` on one line (whitespace runs collapsed), at most ``limit`` characters."""
    line = " ".join(scrub(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class ScrubFilter(logging.Filter):
    """A logging filter that scrubs each record's message and traceback in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler's own error path
            return True
        record.msg, record.args = scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True
