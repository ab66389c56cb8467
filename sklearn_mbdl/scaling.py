"""Scaling out: searches on a Dask cluster and out-of-core inference.

Everything here imports ``dask`` and ``distributed`` when it is called, never
at import: the estimators do not depend on them. Install them with
``pip install "sklearn-mbdl[dask]"``.

- :func:`dask_client` connects to (or starts) a cluster whose workers run
  torch on as many threads as they have task slots (:func:`torch_threads_plugin`),
  so that ``with joblib.parallel_backend("dask"): search.fit(X)`` does not
  oversubscribe the cores.
- :func:`blockwise` runs a fitted estimator's ``transform`` / ``predict`` on a
  Dask array block by block: rows, images and bursts, larger than memory.

Training on several GPUs goes through HF accelerate: ``device="accelerate"``
on a trained estimator (see :ref:`scaling`).
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["dask_client", "torch_threads_plugin", "blockwise"]

_DASK_HINT = 'install them with: pip install "sklearn-mbdl[dask]"'


def _require_dask():
    """``dask.array`` and ``distributed``, or an ImportError naming the extra."""
    try:
        import dask.array as da
        import distributed
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"sklearn_mbdl.scaling needs dask[array] and distributed ({exc}); "
            f"{_DASK_HINT}") from exc
    return da, distributed


def torch_threads_plugin(n_threads=None, *, mmap_threshold=32 * 2 ** 20):
    """A Dask worker plugin that sizes torch's thread pool per worker.

    Each worker (already running or started later) calls
    ``torch.set_num_threads`` and limits the BLAS pools to its number of
    task slots (``--nthreads``), or to ``n_threads``. Without it every task
    of a worker starts torch's default pool, one thread per core of the
    machine: with 2 workers on 2 cores, 4 or more busy threads.

    Where the launcher set ``MALLOC_TRIM_THRESHOLD_`` (Dask's nanny does),
    glibc stops raising its mmap threshold, and every temporary above
    128 KiB becomes an ``mmap`` plus page faults: the plugin sets the
    threshold to ``mmap_threshold``, the ceiling glibc would have reached
    (measured on 20k rows of 64 features in a Dask worker without it:
    SparseCoder's active set 1.5x slower, LISTA's former allocating
    forward 6x).

    Parameters
    ----------
    n_threads : int, optional
        Threads per worker; the worker's ``nthreads`` by default.
    mmap_threshold : int or None, default=32 MiB
        None leaves the worker's allocator as its launcher set it.

    Returns
    -------
    plugin : distributed.WorkerPlugin
        Register it with ``client.register_plugin(plugin)``.

    Examples
    --------
    >>> from distributed import Client, LocalCluster  # doctest: +SKIP
    >>> from sklearn_mbdl.scaling import torch_threads_plugin  # doctest: +SKIP
    >>> cluster = LocalCluster(n_workers=2, threads_per_worker=1)  # doctest: +SKIP
    >>> client = Client(cluster)  # doctest: +SKIP
    >>> client.register_plugin(torch_threads_plugin())  # doctest: +SKIP
    """
    _require_dask()
    from ._worker import TorchThreads

    if n_threads is not None and (isinstance(n_threads, bool) or
                                  not isinstance(n_threads, (int, np.integer))
                                  or n_threads < 1):
        raise ValueError(
            f"n_threads must be a positive integer or None, got {n_threads!r}.")
    return TorchThreads(None if n_threads is None else int(n_threads),
                        mmap_threshold=mmap_threshold)


def dask_client(address=None, *, n_workers=None, threads_per_worker=1,
                processes=True, timeout="10s", mmap_threshold=32 * 2 ** 20,
                **cluster_kwargs):
    """A ``distributed.Client`` whose workers size torch's threads.

    With ``address``, connects to the scheduler running there (``dask
    scheduler``, dask-jobqueue, dask-kubernetes...); without it, starts a
    ``LocalCluster`` on this machine. Either way the workers get
    :func:`torch_threads_plugin`, so each runs torch on its own task slots.

    Parameters
    ----------
    address : str or Cluster, optional
        The scheduler's address (``"tcp://host:8786"``) or a cluster object;
        None starts a ``LocalCluster``.
    n_workers : int, optional
        Workers of the local cluster (its default: one per core group).
    threads_per_worker : int, default=1
        Task slots of each local worker; torch gets as many threads.
    processes : bool, default=True
        Local workers as processes (True) or threads of this process.
    timeout : str or float, default="10s"
        How long to try to reach ``address``.
    mmap_threshold : int or None, default=32 MiB
        See :func:`torch_threads_plugin`.
    **cluster_kwargs
        Passed to ``LocalCluster``.

    Returns
    -------
    client : distributed.Client

    Raises
    ------
    ImportError
        dask or distributed is not installed.
    ValueError
        The scheduler at ``address`` could not be reached.

    Examples
    --------
    >>> import joblib  # doctest: +SKIP
    >>> from sklearn_mbdl.scaling import dask_client  # doctest: +SKIP
    >>> client = dask_client(n_workers=2)  # doctest: +SKIP
    >>> with joblib.parallel_backend("dask"):  # doctest: +SKIP
    ...     search.fit(X)
    """
    _, distributed = _require_dask()
    plugin = torch_threads_plugin(mmap_threshold=mmap_threshold)
    if address is None:
        cluster = distributed.LocalCluster(
            n_workers=n_workers, threads_per_worker=threads_per_worker,
            processes=processes, **cluster_kwargs)
        client = distributed.Client(cluster)
    else:
        try:
            client = distributed.Client(address, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ValueError(
                f"could not reach a Dask scheduler at {address!r} within "
                f"{timeout}: check the address and that a scheduler runs there "
                "(`dask scheduler`, or a dask-jobqueue / dask-kubernetes "
                "cluster's `cluster.scheduler_address`), or pass address=None "
                f"to start a LocalCluster on this machine. ({exc})") from exc
    client.register_plugin(plugin)
    return client


def _whole_rows(array, name):
    """Raise a ValueError naming the rechunk unless every block holds whole
    rows (all of each row's features, pixels or frames)."""
    split = [axis for axis in range(1, array.ndim) if len(array.chunks[axis]) > 1]
    if split:
        axes = ", ".join(f"{axis}: -1" for axis in split)
        raise ValueError(
            f"{name} is cut into blocks along axis {split[0]} (chunks "
            f"{array.chunks[split[0]]}): each block must hold whole rows (a "
            "row's features, an image, a burst), split along axis 0 only. "
            f"Rechunk it first: {name} = {name}.rechunk({{{axes}}})."
        )


def _call(x, *args, method, kwargs, names):
    """The estimator's method on one block (and its aligned arrays); the
    estimator is the last positional argument."""
    *arrays, estimator = args
    out = getattr(estimator, method)(x, **kwargs, **dict(zip(names, arrays)))
    if not isinstance(out, np.ndarray):
        raise TypeError(
            f"{type(estimator).__name__}.{method} returned "
            f"{type(out).__name__}, not one array: blockwise runs methods "
            "that return one array per row (drop return_motion / "
            "return_history, or call predict instead of a multi-output "
            "predict_proba).")
    return out


def blockwise(estimator, X, method="transform", **kwargs):
    """Run a fitted estimator's method on a Dask array, block by block.

    Each block of rows (images ``(n, h, w)``, bursts ``(n, K, h, w)``) goes
    through ``getattr(estimator, method)`` on the worker that holds it, so
    the data never needs to fit in memory and the results equal the
    in-memory call for every row-wise estimator. Keyword arguments that are
    Dask arrays with one entry per row (``channels=`` of a detector) are
    cut into the same row blocks; other keyword arguments are passed as
    they are. A NumPy ``X`` is passed to the method directly.

    Parameters
    ----------
    estimator : fitted estimator
    X : dask.array.Array of shape (n_samples, ...)
        Chunked along the rows (axis 0) only.
    method : str, default="transform"
        ``"transform"``, ``"predict"``, ``"predict_soft"``... any method
        that returns one array with a leading row axis.
    **kwargs
        Passed to the method.

    Returns
    -------
    dask.array.Array of shape (n_samples, ...)
        Lazy: call ``.compute()``, ``.to_zarr(...)`` or ``da.store``.

    Raises
    ------
    ValueError
        A block of ``X`` (or of a per-row keyword array) splits a row, an
        image or a burst; the message gives the ``rechunk`` call that fixes it.

    Examples
    --------
    >>> import dask.array as da  # doctest: +SKIP
    >>> from sklearn_mbdl import SparseCoder  # doctest: +SKIP
    >>> from sklearn_mbdl.scaling import blockwise  # doctest: +SKIP
    >>> coder = SparseCoder(D, alpha=0.1).fit(X_small)  # doctest: +SKIP
    >>> X = da.from_zarr("signals.zarr")  # doctest: +SKIP
    >>> codes = blockwise(coder, X.rechunk({0: 100_000, 1: -1}))  # doctest: +SKIP
    >>> codes.to_zarr("codes.zarr")  # doctest: +SKIP
    """
    check_is_fitted(estimator)
    if not callable(getattr(estimator, method, None)):
        raise ValueError(f"{type(estimator).__name__} has no method {method!r}.")
    da, _ = _require_dask()
    if not isinstance(X, da.Array):
        return getattr(estimator, method)(X, **kwargs)
    if X.ndim < 2:
        raise ValueError(
            f"X must have a row axis and at least one more axis, got shape {X.shape}.")
    _whole_rows(X, "X")
    names, arrays, static = [], [], {}
    for name, value in kwargs.items():
        if isinstance(value, da.Array):
            if value.ndim == 0 or value.shape[0] != X.shape[0]:
                raise ValueError(
                    f"{name} is a Dask array of shape {value.shape}, but X has "
                    f"{X.shape[0]} rows: per-row arrays need one entry per row.")
            _whole_rows(value, name)
            names.append(name)
            arrays.append(value.rechunk({0: X.chunks[0]}))
        else:
            static[name] = value
    # one row through the estimator gives the output's trailing shape and dtype
    probe = _call(*(a[:1].compute() for a in [X] + arrays), estimator,
                  method=method, kwargs=static, names=names)
    out_ind = ("rows",) + tuple(f"out{k}" for k in range(1, probe.ndim))
    args = []
    for k, array in enumerate([X] + arrays):
        args += [array, ("rows",) + tuple(f"in{k}_{j}" for j in range(1, array.ndim))]
    # the estimator enters the graph once, as a key every block depends on.
    # Given as a keyword, it was pickled into every task, and a worker held
    # one copy per block it had been sent (a 16-layer LISTA: 2 MiB a block)
    import dask

    model = dask.delayed(estimator, pure=True, traverse=False)
    return da.blockwise(
        _call, out_ind, *args, model, None,
        new_axes={f"out{k}": probe.shape[k] for k in range(1, probe.ndim)},
        concatenate=True, dtype=probe.dtype,
        meta=np.empty((0,) * probe.ndim, dtype=probe.dtype),
        method=method, kwargs=static, names=names)
