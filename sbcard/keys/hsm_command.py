"""HSM step mode through a program run once per request (``--hsm-command``, driver.toml
``hsm_command``): the two transports of ``sbcard.keys.hsm`` that start a process.

They live apart from ``sbcard.keys.hsm`` because they need ``subprocess`` (with signal and
selectors), while the national driver imports ``sbcard.keys.hsm`` for its HSM address map
on every first call (issue 13, first-call weight); the composition step imports this module
only when an HSM command is the chosen key source.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sbcard.keys.hsm import Exchange, HsmError, parse_answer
from sbcard.subproc import run_with_input, split_command


def command_exchange(command: str, timeout: float = 30.0) -> Exchange:
    """Run ``command`` once per request: JSON request on stdin, JSON response on stdout."""
    argv = split_command(command, "--hsm-command")

    def exchange(request: dict[str, Any]) -> dict[str, Any]:
        return parse_answer(run_with_input(argv, json.dumps(request), timeout=timeout,
                                           what="HSM command", error=HsmError))

    return exchange


def national_command(command: str, timeout: float = 30.0) -> Callable[[str], str]:
    """Run ``command`` once per request: the two lines on stdin, the hex answer on stdout
    (``NationalHsmSource``)."""
    argv = split_command(command, "hsm_command")
    return lambda text: run_with_input(argv, text, timeout=timeout, what="HSM command",
                                       error=HsmError)
