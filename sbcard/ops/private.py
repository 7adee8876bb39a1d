"""Files that hold personal data (journals, audit logs, reports) are the owner's alone.

They are created mode 0600 whatever the umask, like dumps: a bureau's report names every
holder, and a shared workstation must not let another user read it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO


def ensure_private(path: str | Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist; tighten it if it does."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def open_private(path: str | Path, mode: str = "a") -> IO[str]:
    """A text file opened for writing ("a" or "w"), mode 0600 from its first byte."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    fd = os.open(Path(path), flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, mode, encoding="utf-8", newline="")
    except BaseException:
        os.close(fd)
        raise


def redact_url(url: str) -> str:
    """The URL with any password replaced, for messages and logs (``user:***@host``)."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port is not None:
            host += f":{parts.port}"
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        # unparsable: still never echo what looks like user:password@
        head, sep, tail = url.rpartition("@")
        if not sep:
            return url
        scheme, _, _cred = head.partition("://")
        return f"{scheme}://***@{tail}"
