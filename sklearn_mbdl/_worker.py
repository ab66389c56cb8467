"""The Dask worker plugin that sizes torch's thread pool (imported only by
:mod:`sklearn_mbdl.scaling`, never by the core: it needs ``distributed``).

The class lives in its own importable module so that the scheduler and the
workers unpickle it by reference.
"""

import ctypes
import ctypes.util
import os

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["TorchThreads"]

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


def set_threads(n_threads):
    """Give torch and the BLAS libraries ``n_threads`` threads in this process."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n_threads)
    threadpool_limits(limits=n_threads)


def set_mmap_threshold(n_bytes):
    """Serve allocations below ``n_bytes`` from the heap (glibc only).

    glibc raises its mmap threshold as a process frees large blocks (up to
    32 MiB on 64-bit machines), so repeated large temporaries stop costing
    an ``mmap`` / ``munmap`` and fresh page faults each. Setting
    ``MALLOC_TRIM_THRESHOLD_``, as Dask's nanny does for its workers,
    switches that adjustment off and pins the threshold at 128 KiB: solvers
    that allocate per iteration then ran 1.5-6 times slower in a worker.
    This sets the ceiling the adjustment would have reached; the trim
    threshold (memory handed back to the system) is left as Dask set it.
    Returns whether it was applied.
    """
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl...)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, int(n_bytes)))


class TorchThreads(WorkerPlugin):
    """Run torch (and BLAS) on as many threads as the worker has task slots.

    A worker with ``nthreads`` slots otherwise starts one torch pool of the
    machine's core count per task: ``n_workers * nthreads * n_cores`` busy
    threads on ``n_cores`` cores (or, in a nanny's worker process, one
    thread whatever its slots). Where ``MALLOC_TRIM_THRESHOLD_`` is set,
    it also restores glibc's large-block threshold (see
    :func:`set_mmap_threshold`).

    Parameters
    ----------
    n_threads : int, optional
        Threads per worker; the worker's ``nthreads`` by default.
    mmap_threshold : int or None, default=32 MiB
        None leaves glibc's allocator as the worker launcher set it.
    """

    name = "sklearn-mbdl-torch-threads"  # registering again replaces it

    def __init__(self, n_threads=None, mmap_threshold=32 * 2 ** 20):
        self.n_threads = n_threads
        self.mmap_threshold = mmap_threshold

    def setup(self, worker):
        n = self.n_threads or worker.state.nthreads
        set_threads(int(n))
        if self.mmap_threshold and "MALLOC_TRIM_THRESHOLD_" in os.environ:
            set_mmap_threshold(self.mmap_threshold)
