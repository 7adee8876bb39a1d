"""The back-office hook after activation: a command (JSON on stdin) or an HTTP endpoint (POST).

The hook informs the province's card-management system (启用社保功能 is a back-office state
change, spec §8). Its result is recorded in the audit log; a failing hook does not undo what
was done on the card, and the operator is told so.

Because a hook that fails *after* the PIN change leaves a card activated and the back office
uninformed, everything that can be checked is checked before the card is touched
(``check_hook``): the command parses and exists and is executable, the URL is well formed.
HTTP redirects are refused: urllib would turn a POST into a GET on 301/302/303 (the back
office would never receive the activation) and could follow https to http.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sbcard.errors import BadInputError
from sbcard.ops.private import redact_url
from sbcard.subproc import run_with_input, split_command

TIMEOUT_SECONDS = 15.0
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


class HookError(Exception):
    """The hook failed; the caller decides how to report it."""


@dataclass(frozen=True)
class Hook:
    spec: str
    url: bool
    argv: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def shown(self) -> str:
        """The hook for messages and the audit log: never a URL's password."""
        return redact_url(self.spec) if self.url else self.spec


def check_hook(spec: str) -> Hook:
    """Parse and check a ``--hook`` before any card is touched (BadInputError if unusable)."""
    if spec.startswith(("http://", "https://")):
        try:
            parts = urlsplit(spec)
            _ = parts.port                         # raises on a bad port
        except ValueError as exc:
            raise BadInputError(f"--hook {redact_url(spec)!s}: not a valid URL ({exc})") from None
        if not parts.hostname:
            raise BadInputError(f"--hook {redact_url(spec)}: no host in the URL")
        warnings: tuple[str, ...] = ()
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
            warnings = (f"WARNING: --hook {redact_url(spec)} is plain http to another host: "
                        "the activation is sent unencrypted; use https",)
        return Hook(spec, True, warnings=warnings)
    argv = split_command(spec, "--hook")
    program = argv[0]
    path = program if os.sep in program else shutil.which(program)
    if path is None:
        raise BadInputError(f"--hook: command {program!r} not found (not on PATH)")
    if not os.path.isfile(path):
        raise BadInputError(f"--hook: {program} is not a file")
    if not os.access(path, os.X_OK):
        raise BadInputError(f"--hook: {program} is not executable (chmod +x?)")
    return Hook(spec, False, tuple(argv))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise HookError(f"hook {redact_url(req.full_url)} answered HTTP {code}, a redirect to "
                        f"{redact_url(newurl)}: refused (a POST must not become a GET or leave "
                        "https); configure the final URL")


def run_hook(hook: Hook | str, payload: dict[str, Any],
             timeout: float = TIMEOUT_SECONDS) -> str:
    """Run the hook; returns a short status ("ok (HTTP 200)") or raises HookError."""
    if isinstance(hook, str):
        hook = check_hook(hook)
    body = json.dumps(payload, ensure_ascii=False)
    if hook.url:
        req = urllib.request.Request(hook.spec, data=body.encode("utf-8"), method="POST",
                                     headers={"Content-Type": "application/json"})
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(req, timeout=timeout) as resp:
                return f"ok (HTTP {resp.status})"
        except urllib.error.HTTPError as exc:
            raise HookError(f"hook {hook.shown} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise HookError(f"hook {hook.shown} unreachable: {reason}") from None
    run_with_input(list(hook.argv), body, timeout=timeout, what="hook command",
                   error=HookError)
    return "ok (exit 0)"
