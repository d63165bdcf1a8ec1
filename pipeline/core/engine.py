"""Where the heavy tasks run: this machine's process pool or a Dask cluster.

One option picks the engine (CLI ``--scheduler``, ``--workers``):

``processes`` (default)
    A process pool on this machine (:func:`.pools.process_pool`), ``--workers``
    processes; nothing to install or start.
``dask``
    A ``dask.distributed`` LocalCluster of ``--workers`` worker processes
    (one thread each) listening on 127.0.0.1 only; its dashboard link is
    logged.
``tcp://host:8786`` or a ``scheduler.json`` path
    An existing Dask cluster (dask-jobqueue on SLURM/PBS, dask-kubernetes,
    dask-gateway, or ``dask scheduler`` + ``dask worker`` by hand); its
    workers are used, ``--workers`` is ignored.

The tasks are pure functions of their arguments (an AOI-date's tiles and
references, a scene window): whichever engine runs them, the results are
the same bytes. Workers read the data and output folders (tiles, reference
rasters) and write their results to temporary files in the output folder;
the process that started the run renames them into place, keeps the
manifest and holds the lock. So with a cluster,
``--data-dir`` and ``--out-dir`` must be the same paths on every worker (a
shared file system: NFS, Lustre/GPFS on HPC, a ReadWriteMany volume on
Kubernetes), and the workers need the same berthwatch version installed.

A worker that dies (killed, out of memory, node lost) loses only its
running tasks: Dask reschedules them on the other workers (up to
``distributed.scheduler.allowed-failures`` times, 3 by default) and the
LocalCluster's nanny restarts the worker. A task that still fails is
reported as failed by the stage, and a rerun recomputes exactly it.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .errors import UsageError, UserError
from .pools import process_pool

log = logging.getLogger(__name__)

PROCESSES = "processes"
DASK_LOCAL = "dask"


def parse_scheduler(value: str | None) -> str:
    """Check a ``--scheduler`` value; return it normalised.

    Accepts ``processes``, ``dask``, ``tcp://host:port`` (also ``tls://``) or
    the path of an existing scheduler JSON file.
    """
    value = (value or PROCESSES).strip()
    if value.lower() in (PROCESSES, DASK_LOCAL):
        return value.lower()
    if "://" in value:
        scheme, _, rest = value.partition("://")
        host, _, port = rest.rpartition(":")
        if scheme not in ("tcp", "tls", "ucx", "ws", "wss") or not host or not port.isdigit():
            raise UsageError(f"--scheduler: {value!r} is not a scheduler address like tcp://host:8786")
        return value
    path = Path(value)
    if path.suffix == ".json":
        if not path.is_file():
            raise UsageError(f"--scheduler: {value}: no such scheduler file")
        return str(path)
    raise UsageError(f"--scheduler: {value!r}: choose processes, dask, tcp://host:port or a scheduler .json file")


def default_workers() -> int:
    """One per CPU, at most 8."""
    return max(1, min(os.cpu_count() or 1, 8))


# -------------------------------------------------------------- worker side
#: Per worker process: the token of the context the initializer last set up.
_initialised: dict[str, str] = {}
_init_lock = threading.Lock()


def _call_initialised(token: str, initializer: Callable, initargs: tuple, fn: Callable, *args) -> Any:
    """Run ``initializer(*initargs)`` once per worker process and ``token``, then ``fn(*args)``.

    The Dask counterpart of a process pool's initializer: the context (e.g.
    an AOI's median composite) crosses the network once per worker, not once
    per task.
    """
    with _init_lock:
        if _initialised.get("token") != token:
            initializer(*initargs)
            _initialised["token"] = token
    return fn(*args)


# -------------------------------------------------------------- engines
class Engine:
    """Runs functions on this machine's processes or on a Dask cluster.

    Use as a context manager; a pool or LocalCluster is started only when a
    caller actually has parallel work (:meth:`parallel`), so a run with
    nothing to compute starts nothing (an existing cluster is connected to
    on entry, so a wrong address fails at once).

    Parameters
    ----------
    scheduler : str
        ``processes``, ``dask``, ``tcp://host:port`` or a scheduler JSON path
        (see :func:`parse_scheduler`).
    workers : int, optional
        Processes (``processes``) or LocalCluster workers (``dask``);
        default one per CPU, at most 8. Ignored for an existing cluster.
    dashboard : bool
        Serve the LocalCluster's dashboard on a free loopback port.
    """

    def __init__(self, scheduler: str = PROCESSES, workers: int | None = None, dashboard: bool = True):
        self.scheduler = parse_scheduler(scheduler)
        self.requested_workers = int(workers) if workers else default_workers()
        if self.requested_workers < 1:
            raise UsageError(f"--workers: {workers} must be at least 1")
        self.dashboard = dashboard
        self._client = None
        self._cluster = None
        self._pools: list = []

    # ---- lifecycle
    def __enter__(self) -> "Engine":
        if self.is_dask and self.scheduler != DASK_LOCAL:
            self.client  # an existing cluster: fail now, not after the first stage of work
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def is_dask(self) -> bool:
        return self.scheduler != PROCESSES

    @property
    def workers(self) -> int:
        """Tasks that can run at once."""
        if not self.is_dask:
            return self.requested_workers
        if self.scheduler == DASK_LOCAL and self._client is None:
            return self.requested_workers
        return max(1, sum(self.client.nthreads().values()))

    def parallel(self, n_tasks: int) -> bool:
        """Whether ``n_tasks`` tasks are worth sending to workers (else run them inline)."""
        if self.is_dask:
            return n_tasks >= 1
        return n_tasks >= 2 and self.requested_workers >= 2

    @property
    def client(self):
        """The ``distributed.Client`` (started on first use)."""
        if self._client is None:
            self._client = self._start_client()
        return self._client

    def _start_client(self):
        import logging as _logging

        import dask
        from distributed import Client, LocalCluster

        if self.scheduler == DASK_LOCAL:
            dashboard = "127.0.0.1:0" if self.dashboard and _has_bokeh() else None
            with dask.config.set({"distributed.nanny.pre-spawn-environ": _worker_environ(), **LOCAL_CLUSTER_CONFIG}):
                self._cluster = LocalCluster(n_workers=self.requested_workers, threads_per_worker=1,
                                             processes=True, host="127.0.0.1", dashboard_address=dashboard,
                                             silence_logs=_logging.WARNING)
            client = Client(self._cluster)
            n = self.requested_workers
            where = f"LocalCluster of {n} worker process{'es' if n != 1 else ''} on 127.0.0.1"
        else:
            try:
                if self.scheduler.endswith(".json"):
                    client = Client(scheduler_file=self.scheduler, timeout="20s")
                else:
                    client = Client(self.scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise UserError(f"--scheduler {self.scheduler}: cannot connect to the Dask scheduler ({exc})") from None
            n = len(client.scheduler_info().get("workers", {}))
            where = f"Dask cluster at {client.scheduler.address} ({n} workers now)"
        if self.scheduler == DASK_LOCAL:
            link = self._cluster.dashboard_link if dashboard else None
            note = link or ("disabled (bokeh>=3.1 is not installed)" if self.dashboard else "disabled")
        else:
            note = client.dashboard_link
        log.info("dask: %s; dashboard %s", where, note)
        return client

    def close(self) -> None:
        """Cancel what is still queued and release the pools or the cluster."""
        for pool in self._pools:
            pool.shutdown(cancel_futures=True)
        self._pools.clear()
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None
                if self._cluster is not None:
                    self._cluster.close()
                    self._cluster = None

    # ---- work
    def submit_all(self, fn: Callable, arg_tuples: list[tuple], *, preload: str) -> list:
        """Start ``fn(*args)`` for every tuple; return futures (``.result()``) in the same order.

        Arguments travel with each task (through the scheduler with Dask):
        keep them small, pass large inputs by their paths.
        """
        if not arg_tuples:
            return []
        if not self.is_dask:
            # One pool for the whole run (its workers start as tasks need them): a caller with several
            # rounds of tasks (scene windows rescanned) reuses the workers and what they have loaded.
            if not self._pools:
                self._pools.append(process_pool(self.requested_workers, preload))
            return [self._pools[0].submit(fn, *args) for args in arg_tuples]
        client = self.client
        return [client.submit(fn, *args, pure=False, key=f"{fn.__name__}-{uuid.uuid4().hex}")
                for args in arg_tuples]

    def map(self, fn: Callable, items: Iterable, *, preload: str, initializer: Callable | None = None,
            initargs: tuple = ()) -> Iterator:
        """``fn(item)`` for every item on the workers, results in item order.

        ``initializer(*initargs)`` sets up each worker process first (once),
        as for a process pool.
        """
        items = list(items)
        if not self.is_dask:
            workers = min(self.requested_workers, len(items))
            with process_pool(workers, preload, initializer, initargs) as pool:
                yield from pool.map(fn, items, chunksize=1)
            return
        client = self.client
        futures = []
        try:
            if initializer is None:
                futures = [client.submit(fn, it, pure=False, key=f"{fn.__name__}-{uuid.uuid4().hex}")
                           for it in items]
            else:
                token = uuid.uuid4().hex
                # One copy on one worker; the others fetch it from there once (a
                # broadcast scatter can hang when a worker dies meanwhile).
                ctx = client.scatter([initargs], hash=False)[0]
                futures = [client.submit(_call_initialised, token, initializer, ctx, fn, it, pure=False,
                                         key=f"{fn.__name__}-{token[:8]}-{i}")
                           for i, it in zip(itertools.count(), items)]
            for f in futures:
                yield f.result()
        finally:
            if futures:
                client.cancel([f for f in futures if not f.done()])

    def describe(self) -> str:
        if not self.is_dask:
            return f"{self.requested_workers} local processes"
        return f"Dask ({self.scheduler})"


#: Dask settings of berthwatch's own LocalCluster: its monitors cost CPU that the tasks need. With Dask's
#: defaults an idle LocalCluster of 2 workers takes 15 % of a core (its scheduler, nannies and client
#: share this process; each worker samples its task's stack every 10 ms for the dashboard's Profile
#: tab and checks its memory every 100 ms); with these, 2 %. The dashboard still shows the task
#: stream, progress and memory; its Profile tab stays empty. A cluster started by hand
#: (``--scheduler tcp://...``) keeps its own settings.
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",  # event-loop stall detection (its warnings start at 3 s)
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "500ms",  # spill/pause/restart checks
}


def _worker_environ() -> dict:
    """The LocalCluster workers' environment: Dask's, without ``MALLOC_TRIM_THRESHOLD_``, no numpy huge pages.

    Setting that (to give memory back to the system sooner) also stops glibc
    from raising its mmap threshold, so every array above 128 kB is a fresh
    mapping: a whole-scene window's temporaries then cost the kernel 1.6
    million page faults per worker, more time than the work itself.
    """
    import dask

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    # numpy's transparent huge pages for arrays above 4 MB: with the kernel's usual defrag=madvise,
    # a fault may compact memory first (a third of a scene window's time went to the kernel).
    environ["NUMPY_MADVISE_HUGEPAGE"] = "0"
    return environ


def _has_bokeh() -> bool:
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return True


def engine_from_options(extra: dict | None, default_workers_: int | None = None) -> Engine:
    """The engine a stage's options ask for (``extra["scheduler"]``, ``extra["workers"]``)."""
    extra = extra or {}
    return Engine(extra.get("scheduler") or PROCESSES, extra.get("workers") or default_workers_)
