"""Errors the user can act on: shown as one line, without a traceback."""


class UserError(Exception):
    """Bad input or environment; the message names the file/argument and the problem."""

    exit_code = 1


class UsageError(UserError):
    """Bad command-line usage (exit code 2)."""

    exit_code = 2


class Terminated(BaseException):
    """SIGTERM received: unwinds like KeyboardInterrupt so temporary files are removed."""


def describe(exc: BaseException) -> str:
    """One scrubbed line for any exception: what the user can act on first.

    A :class:`UserError` is its message; an ``OSError`` names its file and the
    system's reason (permission denied, no space left, file too large, name too
    long); anything else is an internal error with its type, which ``-v`` expands
    to the traceback.
    """
    from .scrub import one_line

    if isinstance(exc, UserError):
        return one_line(exc)
    if isinstance(exc, OSError) and exc.strerror:
        where = _short_path(exc.filename) if exc.filename is not None else ""
        if exc.filename2 is not None:
            where = f"{where} -> {_short_path(exc.filename2)}"
        return one_line(f"{where}: {exc.strerror}" if where else exc.strerror)
    return one_line(f"internal error ({type(exc).__name__}: {exc}); rerun with -v for the traceback")


def _short_path(path) -> str:
    """A path for a one-line message: very long ones (name too long) keep their ends."""
    text = str(path)
    return text if len(text) <= 240 else f"{text[:120]}...{text[-100:]}"
