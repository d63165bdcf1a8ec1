"""Atomic file writes: write to a temporary file beside the target, then rename.

An interrupted run leaves either the old file or the new one, never a partial one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator


def _read_umask() -> int:
    # os.umask can only be read by setting it; done once at import, before any threads.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    The temporary file keeps the target's suffix so drivers that pick a format
    from the extension (GDAL, matplotlib) behave as for the final name.
    """
    tmp_path = _new_temp_beside(Path(path))
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _new_temp_beside(path: Path) -> Path:
    """A new empty temporary file in ``path``'s folder (created if needed), named as :func:`is_temp_name` expects."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        # mkstemp creates 0600; give the final file the usual permissions (0666 less umask).
        os.chmod(tmp_path, 0o666 & ~_UMASK)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return tmp_path


def write_bytes_atomic(path: Path | str, data: bytes) -> None:
    with atomic_path(path) as tmp:
        _write_synced(tmp, data)


def write_temp_beside(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to a new temporary file beside ``path`` (synced to disk); return the temporary file.

    The first half of an atomic write, for a writer that is not the one who
    decides: a worker writes, the process that keeps the manifest renames
    the file onto ``path`` (``os.replace``) or deletes it. Until then it is
    an ordinary temporary file (:func:`is_temp_name`), removed by
    :func:`remove_stale_temps` if nobody claims it.
    """
    tmp_path = _new_temp_beside(Path(path))
    try:
        _write_synced(tmp_path, data)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return tmp_path


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_text_atomic(path: Path | str, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path | str, obj, *, indent: int | None = 2) -> None:
    write_text_atomic(path, json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False) + "\n")


#: Names :func:`atomic_path` gives its temporary files: ``.<stem>.<random>.tmp<suffix>``.
TEMP_NAME = re.compile(r"^\..+\.tmp(\.[A-Za-z0-9]+)?$")


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary file of an atomic write (never a finished output)."""
    return bool(TEMP_NAME.match(name))


def remove_stale_temps(*folders: Path | str, recursive: bool = True) -> list[Path]:
    """Delete temporary files that a killed run left in ``folders``; return them.

    Call only while holding the folder's lock: then no other run is writing.
    """
    removed = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for p in (folder.rglob(".*") if recursive else folder.glob(".*")):
            if is_temp_name(p.name) and p.is_file():
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed
