"""Errors the user can act on: shown as one line, without a traceback."""


class UserError(Exception):
    """Bad input or environment; the message names the file/argument and the problem."""

    exit_code = 1


class UsageError(UserError):
    """Bad command-line usage (exit code 2)."""

    exit_code = 2
