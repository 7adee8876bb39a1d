"""The exception tree and the exit codes it maps to.

Every error a user can cause or meet (bad hex, no reader, a card that says no) is an
``SbcardError`` with a one-line message; the CLI prints that line and exits with the
error's ``exit_code``. Anything else is a bug and is allowed to show a traceback.
"""

from __future__ import annotations

from enum import IntEnum

from sbcard.messages import Text


class ExitCode(IntEnum):
    """Process exit codes of the ``sbcard`` command; documented in docs/exit-codes.md."""

    OK = 0
    FAILURE = 1          # an operation failed for a reason not listed below
    USAGE = 2            # bad command line (click uses 2 as well)
    BAD_INPUT = 3        # malformed input: hex, APDU, file, CSV, script, persona
    READER = 4           # pcscd not running, no/unknown reader, no card, card removed
    CARD_ERROR = 5       # the card answered with an error status word
    PIN_WRONG = 6        # the PIN was rejected; tries are left
    BLOCKED = 7          # PIN, key, application or card is blocked
    REFUSED = 8          # sbcard refused to act for safety (e.g. one PIN try left)
    MISMATCH = 9         # data on the card disagrees with what was expected


class SbcardError(Exception):
    """Base of every error meant for a user: ``str(err)`` is a complete one-line message.

    Raised with a ``sbcard.messages.Text``, it also carries the Chinese (``err.text``);
    ``str(err)`` stays the English.
    """

    exit_code: ExitCode = ExitCode.FAILURE
    # sbcard.messages.Text when the message has both languages; a national error keeps its
    # national Chinese text (a str) here.
    text: Text | str | None = None

    def __init__(self, *args: object) -> None:
        if args and isinstance(args[0], Text):
            self.text = args[0]
            args = (args[0].en, *args[1:])
        super().__init__(*args)


class BadInputError(SbcardError, ValueError):
    """The user gave something malformed (hex, APDU, file contents)."""

    exit_code = ExitCode.BAD_INPUT


class TransportError(SbcardError):
    """The link to the card failed: no service, no reader, no card, card removed."""

    exit_code = ExitCode.READER


class NoServiceError(TransportError):
    """pcscd is not running (or the PC/SC library is missing)."""


class ReaderNotFoundError(TransportError):
    """No reader, or none matching what the user asked for."""


class ReaderChoiceError(ReaderNotFoundError):
    """The reader the user named cannot be the card's: waiting will not fix that."""


class AmbiguousReaderError(ReaderChoiceError):
    """The reader name fragment matches several readers."""


class NoCardError(TransportError):
    """The reader is there but holds no card."""


class CardRemovedError(TransportError):
    """The card went away while a command was in flight: its effect is unknown."""


class RefusedError(SbcardError):
    """sbcard will not do this without an explicit override (it would risk the card)."""

    exit_code = ExitCode.REFUSED


class MismatchError(SbcardError):
    """What the card holds disagrees with what the operator or file said it should."""

    exit_code = ExitCode.MISMATCH


#: The card's refusals (status words) are ``SbcardError`` too. They are defined beside the SW
#: table (``sbcard.apdu.sw``) and reachable here, so integrators import every error from one
#: module: ``from sbcard.errors import CardError, AuthFailedError``.
_CARD_ERRORS = ("CardError", "AuthFailedError", "BlockedError", "SecurityStatusError",
                "NotFoundError")

__all__ = ["AmbiguousReaderError", "BadInputError", "CardRemovedError", "ExitCode",
           "MismatchError", "NoCardError", "NoServiceError", "ReaderChoiceError",
           "ReaderNotFoundError", "RefusedError", "SbcardError", "TransportError",
           *_CARD_ERRORS]


def __getattr__(name: str) -> type[SbcardError]:
    if name in _CARD_ERRORS:
        from sbcard.apdu import sw

        return getattr(sw, name)
    raise AttributeError(f"module 'sbcard.errors' has no attribute {name!r}")
