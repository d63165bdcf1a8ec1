"""Process pools that are safe to start from a process with threads.

Workers come from a fork server (a fresh interpreter that preloads the
given module), never from a fork of the caller: a fork inherits locks held
by the caller's other threads (GDAL, a progress bar, a test server) and can
deadlock in the child. Where there is no fork server (Windows) they are
spawned.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor


def process_pool(workers: int, preload: str, initializer=None, initargs: tuple = ()) -> ProcessPoolExecutor:
    """A ``ProcessPoolExecutor`` of ``workers`` processes started from a fork server preloading ``preload``."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([preload])
    else:  # Windows
        context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=initializer, initargs=initargs)
