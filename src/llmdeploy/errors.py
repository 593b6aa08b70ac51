"""The exception tree of llmdeploy; the CLI maps each to an exit code."""

from __future__ import annotations


class LlmdeployError(Exception):
    """Root of every error llmdeploy raises on purpose."""

    exit_code = 3

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class UsageError(LlmdeployError):
    """The command line itself is wrong (exit 2)."""

    exit_code = 2


class InvalidSpecError(LlmdeployError):
    """The user's input is invalid; the diagnostics say why (exit 1)."""

    exit_code = 1


class InternalError(LlmdeployError):
    """A resource is missing or a generated manifest failed its own check (exit 3)."""

    exit_code = 3


class OutputError(LlmdeployError):
    """The output cannot be written: a full disk, a permission, a closed stream (exit 1).

    Not a bug in llmdeploy and not a usage error: the environment refused the write.
    """

    exit_code = 1
