"""The back-office hook after activation: a command (JSON on stdin) or an HTTP endpoint (POST).

The hook informs the province's card-management system (启用社保功能 is a back-office state
change, spec §8). Its result is recorded in the audit log; a failing hook does not undo what
was done on the card, and the operator is told so.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from sbcard.subproc import run_with_input, split_command


def run_hook(spec: str, payload: dict[str, Any], timeout: float = 15.0) -> str:
    """Run the hook; returns a short status ("ok (HTTP 200)") or raises HookError."""
    body = json.dumps(payload, ensure_ascii=False)
    if spec.startswith(("http://", "https://")):
        req = urllib.request.Request(spec, data=body.encode("utf-8"), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return f"ok (HTTP {resp.status})"
        except urllib.error.HTTPError as exc:
            raise HookError(f"hook {spec} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise HookError(f"hook {spec} unreachable: {reason}") from None
    run_with_input(split_command(spec, "--hook"), body, timeout=timeout, what="hook command",
                   error=HookError)
    return "ok (exit 0)"


class HookError(Exception):
    """The hook failed; the caller decides how to report it."""
