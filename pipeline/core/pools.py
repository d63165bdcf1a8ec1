"""Process pools that are safe to start from a process with threads, and die with it.

Workers come from a fork server (a fresh interpreter that preloads the
given module), never from a fork of the caller: a fork inherits locks held
by the caller's other threads (GDAL, a progress bar, a test server) and can
deadlock in the child. Where there is no fork server (Windows) they are
spawned.

Workers die with the process that made the pool, however it ends (kill -9
included). Without that they would wait for work for ever: each holds the
write end of its own task queue, so it never reads end-of-file, and it holds
the fork server's liveness pipe and the resource tracker's pipe, so those two
stay alive too (4 processes and several hundred MB after one killed run).
Each worker therefore

- asks the kernel for SIGKILL when its parent (the fork server) dies
  (``prctl(PR_SET_PDEATHSIG)``, Linux), and
- watches the pool's owner from a daemon thread: it waits on a pidfd of the
  owner (Linux >= 5.3; polling ``kill(pid, 0)`` every 0.5 s elsewhere) and
  exits at once when the owner is gone.

Once the workers are gone the fork server reads end-of-file on its liveness
pipe and exits, and the resource tracker follows.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

#: prctl option: signal to deliver when the parent thread exits (linux/prctl.h).
PR_SET_PDEATHSIG = 1
#: Seconds between liveness checks where pidfds are not available.
OWNER_POLL_S = 0.5


def process_pool(workers: int, preload: str, initializer=None, initargs: tuple = ()) -> ProcessPoolExecutor:
    """A ``ProcessPoolExecutor`` of ``workers`` processes started from a fork server preloading ``preload``.

    The workers exit when the calling process ends, however it ends.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([preload])
    else:  # Windows
        context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_init,
                               initargs=(os.getpid(), initializer, initargs))


def _worker_init(owner_pid: int, initializer, initargs: tuple) -> None:
    die_with_parent()
    watch_owner(owner_pid)
    if initializer is not None:
        initializer(*initargs)


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux; a no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # no prctl (unusual libc): the owner watch still applies
        pass


def watch_owner(owner_pid: int) -> threading.Thread | None:
    """Exit this process (``os._exit``) as soon as ``owner_pid`` ends; returns the watching thread."""
    if owner_pid == os.getpid():
        return None
    fd = None
    if hasattr(os, "pidfd_open"):
        try:
            fd = os.pidfd_open(owner_pid)
        except ProcessLookupError:
            os._exit(1)  # the owner is already gone
        except OSError:  # kernel < 5.3, or not permitted: poll instead
            fd = None

    def wait() -> None:
        if fd is not None:
            select.select([fd], [], [])  # readable when the owner exits
        else:
            while _alive(owner_pid):
                time.sleep(OWNER_POLL_S)
        os._exit(1)

    thread = threading.Thread(target=wait, name="berthwatch-owner-watch", daemon=True)
    thread.start()
    return thread


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
