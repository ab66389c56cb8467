"""The Dask worker plugin that sizes torch's thread pool (imported only by
:mod:`sklearn_mbdl.scaling`, never by the core: it needs ``distributed``).

The class lives in its own importable module so that the scheduler and the
workers unpickle it by reference.
"""

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["TorchThreads"]


def set_threads(n_threads):
    """Give torch and the BLAS libraries ``n_threads`` threads in this process."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n_threads)
    threadpool_limits(limits=n_threads)


class TorchThreads(WorkerPlugin):
    """Run torch (and BLAS) on as many threads as the worker has task slots.

    A worker with ``nthreads`` slots otherwise starts one torch pool of the
    machine's core count per task: ``n_workers * nthreads * n_cores`` busy
    threads on ``n_cores`` cores.

    Parameters
    ----------
    n_threads : int, optional
        Threads per worker; the worker's ``nthreads`` by default.
    """

    name = "sklearn-mbdl-torch-threads"  # registering again replaces it

    def __init__(self, n_threads=None):
        self.n_threads = n_threads

    def setup(self, worker):
        n = self.n_threads or worker.state.nthreads
        set_threads(int(n))
