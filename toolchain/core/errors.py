"""User-facing errors: each says what is wrong and what to do next; the CLI edge maps them to exit codes."""

from __future__ import annotations


class ToolchainError(Exception):
    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}. {self.hint}." if self.hint else self.message


class ConfigError(ToolchainError):
    exit_code = 2


class InputError(ToolchainError):
    """A user-supplied file or value is unusable."""

    exit_code = 3


class StageError(ToolchainError):
    """A build stage failed (a tool failed, or a check on its output did)."""

    exit_code = 4


class DivergenceError(ToolchainError):
    """Runtimes disagree beyond the model's tolerance."""

    exit_code = 5
