"""Errors a user can act on, and the exit codes the CLI maps them to.

Every error that reaches the user names what to fix: the file, the line and the field where
they are known. The CLI prints ``str(error)`` and exits with ``error.exit_code``; no traceback.
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_UNUSABLE_INPUT = 2


class FtwizardError(Exception):
    """Base class for errors shown to the user as a message, never as a traceback."""

    exit_code = EXIT_CHECK_FAILED


class InputError(FtwizardError):
    """Unusable input: a missing or malformed file, an unknown id, a bad option value.

    ``path``, ``line`` (1-based) and ``field`` are folded into the message so the user can go
    straight to the spot.
    """

    exit_code = EXIT_UNUSABLE_INPUT

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.path = Path(path) if path is not None else None
        self.line = line
        self.field = field
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.path is not None:
            where = str(self.path)
            if self.line is not None:
                where += f":{self.line}"
        parts = [p for p in (where, f"field '{self.field}'" if self.field else "") if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class CheckFailed(FtwizardError):
    """A check ran to completion and found problems (exit code 1)."""

    exit_code = EXIT_CHECK_FAILED
