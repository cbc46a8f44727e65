"""Secrets inside URLs and DSNs: which parts of a URL are credentials, and the URL with them masked."""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit

_CREDENTIAL_PARAM = re.compile(r"(?i)token|key|secret|pass|pwd|auth|sig|credential|session|jwt")
_TOKEN_LEN = 12        # an unnamed query value this long may be a token (not a path like /run/..)
_FLAG_LEN = 8          # a bare query item shorter than this is a flag (?json, ?full), not a token


def url_secrets(url: str) -> list[str]:
    """The credentials inside ``url``: the userinfo password (or the lone user part of an http
    URL: a token used as the basic-auth name), and query values that are credentials by their
    parameter's name or look like tokens. For the log scrubber, which masks these texts
    wherever they appear, so ordinary short values (``?full=1``, ``?json``) stay out."""
    p = urlsplit(url)
    out = []
    if p.password:
        out.append(unquote(p.password))
    elif p.username and p.scheme in ("http", "https"):
        out.append(unquote(p.username))
    for k, v in parse_qsl(p.query, keep_blank_values=True):
        if v and (_CREDENTIAL_PARAM.search(k) or (len(v) >= _TOKEN_LEN and not v.startswith("/"))):
            out.append(v)
        elif not v and len(k) >= _FLAG_LEN:
            out.append(k)
    return out


def mask_url(url: str, whole: bool = False) -> str:
    """``mysql://monitor:s3cret@h:3306/`` -> ``mysql://monitor:***@h:3306/``; every query value
    -> ``***`` (names kept: ``?token=***``), as is a bare query item that could be a token.
    ``whole``: the URL is itself the credential (a signed Teams Workflows URL): host only."""
    parts = urlsplit(url)
    if whole:
        host = parts.hostname or "?"
        return f"{parts.scheme}://{host}" + (f":{parts.port}" if _port(url) else "") + "/***"
    netloc = parts.netloc
    if "@" in netloc:
        cred, host = netloc.rsplit("@", 1)
        user = cred.split(":", 1)[0]
        if ":" in cred:
            netloc = f"{user}:***@{host}"
        else:      # http://TOKEN@host: the name is the credential; a DSN's user name is not
            netloc = f"***@{host}" if parts.scheme in ("http", "https") else f"{user}@{host}"
    path = parts.path
    # Slack-style hook URLs carry their secret in the path: keep the host, hide the rest.
    if (parts.scheme in ("http", "https") and len(path) > 1
            and ("hooks" in parts.netloc or "/services/" in path)):
        path = "/***"
    items = []
    for item in parts.query.split("&") if parts.query else []:
        name, eq, value = item.partition("=")
        if eq:
            items.append(f"{name}=***" if value else f"{name}=")
        else:
            items.append(name if len(name) < _FLAG_LEN else "***")
    return f"{parts.scheme}://{netloc}{path}" + (f"?{'&'.join(items)}" if items else "")


def _port(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError:
        return None


def mask_ping_url(url: str) -> str:
    """A ping URL (healthchecks: ``https://hc-ping.com/<uuid>``): its path is the check's
    credential, so only the scheme and host are shown: ``https://hc-ping.com/***``."""
    parts = urlsplit(mask_url(url))
    return f"{parts.scheme}://{parts.netloc}/***"


# --- parsing helpers: each raises ConfigError naming the key -----------------------------------
