"""Incremental, idempotent stages: a manifest of outputs, their inputs and parameters.

For every output a stage writes, the manifest records the SHA-256 of each input
file, the hash of the parameters (including the detector version) and the
output's own checksum. A rerun skips outputs that are up to date, recomputes
exactly those whose inputs or parameters changed, and removes outputs whose
inputs are gone. Checksums are cached by (size, mtime) so a run with nothing new
reads no file contents.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import filelock

from .atomic import write_json_atomic
from .errors import UserError

log = logging.getLogger(__name__)

MANIFEST_DIR = ".berthwatch"
#: A run saves its manifest at least this long (s) after the previous save (:meth:`Manifest.save_soon`).
SAVE_INTERVAL_S = 3.0
#: ... and at least this many times as long as the previous save took (at most ~2 % of a core).
SAVE_COST_FACTOR = 50


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_fingerprint(path: Path, data: bytes | None = None) -> dict:
    """``{"sha256", "size", "mtime_ns"}`` of a file (``data``: its bytes, when they are at hand)."""
    st = os.stat(path)
    digest = hashlib.sha256(data).hexdigest() if data is not None else sha256_file(Path(path))
    return {"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def params_hash(params: dict[str, Any]) -> str:
    """Stable short hash of a JSON-serialisable parameter dict."""
    blob = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class DirLock:
    """Exclusive lock on a data or output folder, on every platform.

    A :class:`filelock.FileLock` on ``<dir>/.berthwatch/lock`` (``flock`` on
    POSIX, ``msvcrt.locking`` on Windows), which the operating system
    releases when the process dies, so a crashed run never leaves a stale
    lock behind. The holder's pid is written to ``lock.pid`` beside it for
    the message a second run prints.
    """

    def __init__(self, directory: Path):
        self.path = Path(directory) / MANIFEST_DIR / "lock"
        self._pid_path = self.path.with_name("lock.pid")
        self._lock: filelock.BaseFileLock | None = None

    def __enter__(self) -> "DirLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(self.path, timeout=0, is_singleton=False)
        try:
            lock.acquire()
        except filelock.Timeout:
            try:
                holder = self._pid_path.read_text().strip() or "unknown"
            except OSError:
                holder = "unknown"
            raise UserError(
                f"{self.path.parent.parent}: another berthwatch run (pid {holder}) is using this folder; "
                "wait for it to finish"
            ) from None
        self._pid_path.write_text(str(os.getpid()))
        self._lock = lock
        return self

    def __exit__(self, *exc) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


@dataclass
class Task:
    """One unit of incremental work.

    Attributes
    ----------
    key : str
        Stable identifier, e.g. ``"rajin/2023-09-08"``.
    outputs : list of Path
        Files the task writes (each atomically).
    inputs : list of Path
        Files the task reads; a change in any of them makes the task stale.
    params : dict
        Everything else that determines the outputs (detector version,
        parameters, remote product id); hashed.
    run : callable
        ``run(task)`` produces the outputs.
    """

    key: str
    outputs: list[Path]
    inputs: list[Path]
    params: dict[str, Any]
    run: Callable[["Task"], None]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageResult:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)


class PathKeys:
    """Paths as a manifest names them (relative to its root where they lie under it) and their checksums."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._rel_cache: dict[str, str] = {}
        self._dir_cache: dict[str, str] = {}
        self._root_resolved = self.root.resolve()

    def rel(self, path: Path) -> str:
        key = str(path)
        rel = self._rel_cache.get(key)
        if rel is None:
            resolved = self._resolved(key if os.path.isabs(key) else os.path.join(os.getcwd(), key))
            root = str(self._root_resolved)
            if resolved == root:
                rel = "."
            elif resolved.startswith(os.path.join(root, "")):
                rel = Path(resolved[len(os.path.join(root, "")):]).as_posix()
            else:
                rel = Path(resolved).as_posix()
            self._rel_cache[key] = rel
        return rel

    def _resolved(self, path: str) -> str:
        """``os.path.realpath(path)``, with the folders above it resolved once per run.

        ``realpath`` costs a system call per path component; the inputs of a
        run share their folders (each date's tiles lie three folders below the
        AOI's), so only the new last component is looked at.
        """
        resolved = self._dir_cache.get(path)
        if resolved is None:
            head, tail = os.path.split(path)
            if not tail or head == path:
                resolved = os.path.realpath(path)
            else:
                resolved = os.path.join(self._resolved(head), tail)
                if tail in (".", "..") or os.path.islink(resolved):
                    resolved = os.path.realpath(resolved)
            self._dir_cache[path] = resolved
        return resolved

    def checksum(self, path: Path, recorded: dict | None = None) -> str:
        """SHA-256 of ``path``, reusing ``recorded`` when size and mtime are unchanged."""
        st = path.stat()
        if recorded and recorded.get("size") == st.st_size and recorded.get("mtime_ns") == st.st_mtime_ns:
            return recorded["sha256"]
        return sha256_file(path)


class Manifest(PathKeys):
    """The manifest of one stage, stored as ``<root>/.berthwatch/manifest-<stage>.json``."""

    def __init__(self, root: Path, stage: str):
        super().__init__(root)
        self.stage = stage
        self.path = self.root / MANIFEST_DIR / f"manifest-{stage}.json"
        self.entries: dict[str, dict] = {}
        if self.path.exists():
            self.entries = self._load()
        self._stat_cache: dict[str, dict] = {}
        self._unsaved, self._saved_at, self._save_cost = False, -math.inf, 0.0

    def _load(self) -> dict[str, dict]:
        """The recorded entries; a damaged manifest is set aside and rebuilt.

        A manifest only saves work: without it every output is recomputed (or,
        for fetch, re-verified against its checksum) and recorded afresh.
        """
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            entries = data["outputs"]
            if not isinstance(entries, dict) or not all(
                    isinstance(e, dict) and isinstance(e.get("output"), dict) and isinstance(e.get("inputs", {}), dict)
                    for e in entries.values()):
                raise ValueError("entries of the wrong shape")
            return entries
        except IsADirectoryError:
            raise UserError(f"{self.path}: is a folder, expected the {self.stage} manifest") from None
        except PermissionError as exc:
            raise UserError(f"{self.path}: cannot read ({exc.strerror})") from None
        except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            log.warning("%s: damaged manifest (%s); rebuilding it, outputs are recomputed", self.path,
                        type(exc).__name__)
            return {}

    def _abs(self, rel: str) -> Path:
        p = Path(rel)
        return p if p.is_absolute() else self.root / p

    def _fingerprint(self, path: Path, recorded: dict | None = None) -> dict:
        st = path.stat()
        # Inputs shared by many tasks (an AOI's reference files, by each of its dates) are hashed
        # once per run while their size and modification time stay the same.
        seen = self._stat_cache.get(str(path))
        if seen is not None and (seen["size"], seen["mtime_ns"]) == (st.st_size, st.st_mtime_ns):
            return dict(seen)
        fingerprint = {"sha256": self.checksum(path, recorded), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        self._stat_cache[str(path)] = fingerprint
        return dict(fingerprint)

    def add_fingerprints(self, fingerprints: dict[str, dict]) -> None:
        """Take SHA-256 sums computed elsewhere (a worker that read or wrote the files), by path.

        ``fingerprints`` maps a path (as this process names it) to its
        ``{"sha256", "size", "mtime_ns"}`` (:func:`file_fingerprint`). Each is
        used only while the file's size and modification time are still those
        (a file changed since is hashed again), so this process need not read
        the file to record it.
        """
        for path, fingerprint in fingerprints.items():
            self._stat_cache[str(path)] = {k: fingerprint[k] for k in ("sha256", "size", "mtime_ns")}

    def is_current(self, task: Task) -> bool:
        phash = params_hash(task.params)
        for out in task.outputs:
            entry = self.entries.get(self.rel(out))
            if entry is None or entry.get("params_hash") != phash or not out.exists():
                return False
            if self.checksum(out, entry.get("output")) != entry["output"]["sha256"]:
                return False
            recorded_inputs = entry.get("inputs", {})
            if set(recorded_inputs) != {self.rel(p) for p in task.inputs}:
                return False
            for p in task.inputs:
                rec = recorded_inputs[self.rel(p)]
                if not p.exists() or self.checksum(p, rec) != rec["sha256"]:
                    return False
        return True

    def record(self, task: Task) -> None:
        self._unsaved = True
        # An input whose size and modification time are those recorded last time keeps its recorded
        # SHA-256 (the trust :meth:`is_current` gives it): a forced rerun does not hash the tiles again.
        previous = self.entries.get(self.rel(task.outputs[0]), {}).get("inputs", {}) if task.outputs else {}
        inputs = {(rel := self.rel(p)): self._fingerprint(p, previous.get(rel)) for p in task.inputs}
        phash = params_hash(task.params)
        for out in task.outputs:
            self.entries[self.rel(out)] = {
                "key": task.key,
                "inputs": inputs,
                "params_hash": phash,
                "output": self._fingerprint(out),
            }

    def forget(self, output: Path) -> None:
        self.entries.pop(self.rel(output), None)

    def prune_orphans(self, scope: Callable[[str], bool] = lambda rel: True) -> list[str]:
        """Remove outputs (files and entries) whose recorded inputs no longer exist."""
        removed = []
        for rel, entry in list(self.entries.items()):
            if not scope(rel) or not entry.get("inputs"):
                continue
            if any(not self._abs(i).exists() for i in entry["inputs"]):
                out = self._abs(rel)
                if out.exists():
                    out.unlink()
                del self.entries[rel]
                removed.append(rel)
        return removed

    def save(self) -> None:
        started = time.monotonic()
        # Compact JSON: the C encoder (an indented dump runs in Python, ~10x slower per entry).
        write_json_atomic(self.path, {"stage": self.stage, "outputs": dict(sorted(self.entries.items()))},
                          indent=None)
        self._saved_at = time.monotonic()
        self._save_cost = self._saved_at - started
        self._unsaved = False

    def save_soon(self, now: bool = False) -> None:
        """Save what was recorded since the last save, unless that was less than ``SAVE_INTERVAL_S`` (or
        ``SAVE_COST_FACTOR`` save times) ago; ``now``: whenever anything was recorded.

        Each save rewrites every entry: saving after each of 1,800 tasks costs
        O(n^2) (it was 90 % of a 1,800-AOI-date run), and saving every second
        still took 2.4 CPU s of such a run from the workers. A run killed
        between saves recomputes the few outputs it had not recorded (each
        output is written atomically, so none is damaged).
        """
        if self._unsaved and (now or time.monotonic() - self._saved_at >= max(SAVE_INTERVAL_S,
                                                                              SAVE_COST_FACTOR * self._save_cost)):
            self.save()


def run_tasks(
    manifest: Manifest,
    tasks: Iterable[Task],
    *,
    force: bool = False,
    progress: Callable[[Iterable[Task]], Iterable[Task]] | None = None,
    stop_on_error: bool = False,
) -> StageResult:
    """Run the tasks that are not up to date, recording each success in the manifest.

    A failing task is reported in the result and does not stop the others (unless
    ``stop_on_error``); its outputs are left as they were. The manifest is saved
    (:meth:`Manifest.save_soon`) a few seconds after a task completes, and on the way out, so an
    interrupted run keeps what it finished (a SIGKILL: all but the last few seconds).
    """
    result = StageResult()
    tasks = list(tasks)
    try:
        _run_each(manifest, tasks, progress(tasks) if progress else tasks, force, stop_on_error, result)
    finally:
        manifest.save_soon(now=True)  # what completed (a refused or failed run writes nothing)
    return result


def _run_each(manifest: Manifest, tasks: list, iterable, force: bool, stop_on_error: bool,
              result: StageResult) -> None:
    for task in iterable:
        if not force and manifest.is_current(task):
            result.skipped.append(task.key)
            continue
        try:
            task.run(task)
        except UserError as exc:
            if stop_on_error:
                raise
            result.failed[task.key] = str(exc)
            log.error("%s: %s", task.key, exc)
            continue
        except Exception as exc:  # keep going; report every failure at the end
            if stop_on_error:
                raise
            result.failed[task.key] = f"{type(exc).__name__}: {exc}"
            log.error("%s: %s: %s", task.key, type(exc).__name__, exc, exc_info=log.isEnabledFor(logging.DEBUG))
            continue
        missing = [o for o in task.outputs if not o.exists()]
        if missing:
            result.failed[task.key] = f"did not write {missing[0]}"
            continue
        manifest.record(task)
        manifest.save_soon()
        result.done.append(task.key)
