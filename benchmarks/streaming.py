"""Streaming inference on a Dask cluster: rows through SparseCoder and LISTA.

``--rows`` signals of 64 features (1e7 by default), drawn block by block from
a sparse model (5 of 128 unit atoms, 1% noise) and never held in memory,
go through ``sklearn_mbdl.scaling.blockwise`` on a ``LocalCluster`` of 1 and
then 2 worker processes (one thread each); only two numbers per block come
back (the sum of |codes| and the non-zero count), so the run is a pure
streaming workload. Reported: rows/s per worker count, scaling efficiency
(rows/s with 2 workers over twice that with 1), the peak resident memory of
the whole process tree (this process, scheduler, nannies and workers), and
the speed of one block's transform inside a worker against this plain
process (Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` in its workers).

Run: ``python benchmarks/streaming.py [--rows 10000000] [--chunk 20000]``;
writes ``benchmarks/results/streaming.md``.
"""

import argparse
import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import machine, table  # noqa: E402

N_FEATURES, N_COMPONENTS, N_ACTIVE, ALPHA = 64, 128, 5, 0.1


def dictionary():
    D = np.random.RandomState(0).standard_normal((N_COMPONENTS, N_FEATURES))
    return D / np.linalg.norm(D, axis=1, keepdims=True)


def signals(n_rows, seed, D):
    """``n_rows`` signals of the sparse model, float32, from ``seed``."""
    rng = np.random.RandomState(seed)
    codes = np.zeros((n_rows, N_COMPONENTS), dtype=np.float32)
    atoms = rng.randint(N_COMPONENTS, size=(n_rows, N_ACTIVE))
    np.put_along_axis(codes, atoms, rng.standard_normal((n_rows, N_ACTIVE)), 1)
    noise = 0.01 * rng.standard_normal((n_rows, N_FEATURES))
    return (codes @ D.astype(np.float32) + noise).astype(np.float32)


def _block(D, block_info=None):
    info = block_info[None]
    (start, stop), _ = info["array-location"]
    return signals(stop - start, 1000 + info["chunk-location"][0], D)


def stream(n_rows, chunk, D):
    """A lazy Dask array of ``n_rows`` signals, generated block by block."""
    import dask.array as da

    blocks = [chunk] * (n_rows // chunk) + ([n_rows % chunk] if n_rows % chunk else [])
    chunks = (tuple(blocks), (N_FEATURES,))
    return da.map_blocks(_block, D, chunks=chunks, dtype=np.float32,
                         meta=np.empty((0, 0), np.float32))


class PeakMemory:
    """Peak memory of this process and all its descendants, sampled.

    ``peak`` sums the proportional set sizes (PSS: each page shared by k
    processes counts 1/k in each), the physical memory the tree uses;
    ``peak_rss`` sums the resident sizes, which count the shared pages
    (torch's libraries, mapped by every worker) once per process.

    One PSS sample of the tree reads every process's page map and costs
    about 50 ms of CPU: sampled every 0.25 s it took a sixth of a core from
    the workers it measures. A stream's memory is flat after its first
    blocks, so a sample every 2 s finds the same peak for 2.5% of a core.
    """

    def __init__(self, period=2.0):
        self.period, self.peak, self.peak_rss = period, 0, 0
        self._stop = threading.Event()

    def _sample(self):
        me = psutil.Process()
        pss = rss = 0
        for p in [me] + me.children(recursive=True):
            try:
                info = p.memory_full_info()
            except psutil.Error:
                continue
            pss += getattr(info, "pss", info.rss)
            rss += info.rss
        return pss, rss

    def _run(self):
        while not self._stop.is_set():
            pss, rss = self._sample()
            self.peak, self.peak_rss = max(self.peak, pss), max(self.peak_rss, rss)
            self._stop.wait(self.period)

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def timed_transform(transform, X, repeat=3):
    """Best wall time of ``transform(X)`` (runs in a worker or here)."""
    import torch as _torch

    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        transform(X)
        best = min(best, time.perf_counter() - start)
    return best, _torch.get_num_threads(), os.environ.get("MALLOC_TRIM_THRESHOLD_")


def _cpu_seconds():
    """CPU seconds this process has used (run on each worker)."""
    times = psutil.Process().cpu_times()
    return times.user + times.system


def allocating_forward(est):
    """The former LISTA transform: the module's forward by chunks of 1024
    rows, a fresh tensor per operation (no guard)."""
    def transform(X):
        module = est.net_.module_
        with torch.no_grad():
            for start in range(0, len(X), 1024):
                module(torch.from_numpy(X[start:start + 1024]))
    return transform


def fit_estimators(D):
    from sklearn_mbdl import LISTATransformer, SparseCoder

    X_train = signals(4000, 0, D)
    coder = SparseCoder(D, alpha=ALPHA).fit(X_train)
    lista = LISTATransformer(D, alpha=ALPHA, n_layers=16, max_epochs=20,
                             random_state=0).fit(X_train)
    return {"SparseCoder (active set)": coder, "LISTATransformer (16 layers)": lista}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=float, default=1e7)
    parser.add_argument("--chunk", type=int, default=20_000)
    parser.add_argument("--block-rows", type=int, default=20_000,
                        help="rows of the worker-against-plain-process timing")
    parser.add_argument("--rounds", type=int, default=5,
                        help="alternated plain / worker timings of that block")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "streaming.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    import dask

    from sklearn_mbdl.scaling import blockwise, dask_client

    t0 = time.perf_counter()
    n_rows = int(args.rows)
    D = dictionary()
    estimators = fit_estimators(D)
    block = signals(args.block_rows, 7, D)
    load = os.getloadavg()
    print(f"load average before: {load[0]:.1f} (2 cores)", flush=True)

    # ---- the stream ---------------------------------------------------------
    # a fresh cluster per stream, before anything else runs here: each
    # stream's peak memory is its own, not what earlier work left in the
    # allocators of this process or of the workers
    results = {}
    peak_all = 0
    for n_workers in (1, 2):
        for name, est in estimators.items():
            client = dask_client(n_workers=n_workers, threads_per_worker=1,
                                 processes=True, dashboard_address=None)
            # warm-up: the workers import torch and unpickle the model
            codes = blockwise(est, stream(2 * args.chunk, args.chunk, D))
            dask.compute(abs(codes).sum(), (codes != 0).sum())
            X = stream(n_rows, args.chunk, D)
            codes = blockwise(est, X)
            cpu_before = sum(client.run(_cpu_seconds).values())
            with PeakMemory() as memory:
                start = time.perf_counter()
                total, nonzero = dask.compute(abs(codes).sum(), (codes != 0).sum())
                seconds = time.perf_counter() - start
            cpu = sum(client.run(_cpu_seconds).values()) - cpu_before
            peak_all = max(peak_all, memory.peak)
            results[name, n_workers] = (n_rows / seconds, memory.peak,
                                        memory.peak_rss, nonzero / n_rows,
                                        n_rows / cpu)
            print(f"{name}, {n_workers} worker(s): {n_rows / seconds:,.0f} rows/s, "
                  f"{seconds:.1f} s, peak {memory.peak / 2 ** 30:.2f} GiB "
                  f"(RSS sum {memory.peak_rss / 2 ** 30:.2f} GiB), "
                  f"{nonzero / n_rows:.2f} non-zeros per row, "
                  f"{n_rows / cpu:,.0f} rows per worker CPU second", flush=True)
            cluster = client.cluster
            client.close()
            cluster.close()

    # ---- one block: plain process against a worker ------------------------
    # timed in alternation (plain, worker, plain, ...), best of each: other
    # jobs on the machine then weigh on both alike
    lista = estimators["LISTATransformer (16 layers)"]
    transforms = {name: est.transform for name, est in estimators.items()}
    transforms["LISTA, allocating forward (before)"] = allocating_forward(lista)
    speed_rows = []
    for mmap in (None, 32 * 2 ** 20):
        client = dask_client(n_workers=1, threads_per_worker=1, processes=True,
                             dashboard_address=None, mmap_threshold=mmap)
        for name, transform in transforms.items():
            plain = worker = np.inf
            for _ in range(args.rounds):
                plain = min(plain, timed_transform(transform, block, 1)[0])
                t, threads, trim = client.submit(timed_transform, transform, block, 1,
                                                 pure=False).result()
                worker = min(worker, t)
            speed_rows.append([name, "on" if mmap else "off", f"{plain:.3f}",
                               f"{worker:.3f}", f"{worker / plain:.2f}"])
            print(speed_rows[-1], f"(worker: {threads} thread, trim={trim})", flush=True)
        cluster = client.cluster
        client.close()
        cluster.close()

    load_after = os.getloadavg()

    rows = []
    for name in estimators:
        r1, m1, s1, nnz, c1 = results[name, 1]
        r2, m2, s2, _, c2 = results[name, 2]
        rows.append([name, f"{r1:,.0f}", f"{r2:,.0f}", f"{r2 / (2 * r1):.0%}",
                     f"{c1:,.0f} / {c2:,.0f}", f"{c2 / c1:.0%}",
                     f"{m1 / 2 ** 30:.2f} / {m2 / 2 ** 30:.2f}",
                     f"{s1 / 2 ** 30:.2f} / {s2 / 2 ** 30:.2f}", f"{nnz:.2f}"])
    text = "\n".join([
        "# Streaming inference on a Dask LocalCluster",
        "",
        f"Command: `python benchmarks/streaming.py --rows {args.rows:g} --chunk {args.chunk}`"
        f" (wall time {time.perf_counter() - t0:.0f} s)",
        "",
        f"{n_rows:,} rows of {N_FEATURES} features (float32; 5 of {N_COMPONENTS} unit "
        f"atoms, 1% noise, alpha={ALPHA}) generated block by block ({args.chunk:,} rows "
        "per block), coded by `sklearn_mbdl.scaling.blockwise`, reduced to two sums "
        "per block. Workers are processes with one thread each "
        "(`dask_client(n_workers=n, threads_per_worker=1)`). Peak memory: this "
        "process, the scheduler, nannies and workers together.",
        "",
        table(["estimator", "rows/s, 1 worker", "rows/s, 2 workers",
               "scaling efficiency", "rows per worker CPU s, 1 / 2 workers",
               "CPU efficiency", "peak memory, 1 / 2 workers (GiB)",
               "RSS sum, 1 / 2 workers (GiB)", "non-zeros per row"], rows),
        "",
        f"Peak memory of the whole process tree over all runs: "
        f"{peak_all / 2 ** 30:.2f} GiB (summed PSS: a page shared by k processes "
        "counts 1/k in each; the RSS sum counts torch's shared libraries once per "
        "process). The rows/s include generating the rows on the workers. "
        "Scaling efficiency: rows/s with 2 workers over twice the rows/s with 1; "
        "it needs 2 free cores. CPU efficiency: rows per CPU second of the "
        "workers with 2 workers over that with 1, the part of the scaling that "
        "does not depend on what else the machine runs (100%: no cost of "
        "parallelism; a full 2-core machine would then reach 100% scaling).",
        "",
        f"## One block of {args.block_rows:,} rows: a worker against a plain process",
        "",
        f"Best of {args.rounds} transforms of the same block, timed in alternation "
        "(plain, worker, plain, ...), seconds. 'glibc threshold' is the "
        "worker plugin's `mmap_threshold` (off: the allocator as Dask's nanny leaves "
        "it, `MALLOC_TRIM_THRESHOLD_=65536`). 'allocating forward' is LISTA's former "
        "transform: the module's forward, one new tensor per operation.",
        "",
        table(["transform", "glibc threshold", "plain process (s)", "worker (s)",
               "worker / plain"], speed_rows),
        "",
        f"Machine: {machine('cpu')}; 2 cores (load average {load[0]:.1f} before the "
        f"run, {load_after[0]:.1f} after, the run's own processes included); other "
        "jobs on the machine lower the figures, and the scaling efficiency most.",
        "",
    ])
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
