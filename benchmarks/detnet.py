"""Benchmark of DetNetClassifier against the model-based MIMO detectors.

Writes ``benchmarks/results/detnet.md`` (``detnet_<device>.md`` for another
device) and the figure ``detnet_ber.png``.

Run::

    python benchmarks/detnet.py              # CPU, one thread (~35 min)
    python benchmarks/detnet.py --quick --out-dir /tmp/detnet   # a smaller smoke run

Settings (the issue's, after Samuel, Diskin & Wiesel 2019):

- 30 users, 60 antennas, BPSK, i.i.d. Gaussian channel drawn per sample,
  trained on SNR uniform in [7, 14] dB, tested at 8..13 dB;
- one fixed 60 x 30 channel with Toeplitz correlation 0.55 at both ends;
- QPSK 20 x 30 and 16-QAM 15 x 25 (complex sizes), i.i.d. channels;
- detection time per sample at batch 1000, and the sphere decoder's visited
  nodes (mean and worst case).

Baselines: zero forcing, linear MMSE and ordered MMSE-SIC (given the exact
noise variance of each sample, in their favour), the annealed projected
gradient DetNet starts from (30 iterations, the model-based twin), and
exact maximum likelihood by sphere decoding, all on the same test draws.
"""

import argparse
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.linalg import sqrtm, toeplitz
from threadpoolctl import threadpool_limits

from sklearn_mbdl import DetNetClassifier
from sklearn_mbdl.datasets import make_mimo, mimo_constellation
from sklearn_mbdl.metrics import bit_error_rate
from sklearn_mbdl.prox import nearest_point
from sklearn_mbdl.solvers import (
    mmse,
    mmse_sic,
    projected_gradient,
    sphere_decoder,
    zero_forcing,
)

from _common import best_time, machine, table

RESULTS = Path(__file__).parent / "results"
METHODS = ["ZF", "MMSE", "MMSE-SIC", "PGD (annealed)", "DetNet", "ML"]


def noise_variance(H, snr_db, points):
    """The exact per-sample noise variance of make_mimo's convention."""
    K = H.shape[-1]
    energy = float(np.mean(points ** 2))
    frob = np.sum(H ** 2, axis=(-2, -1))
    return energy * frob / (K * 10.0 ** (snr_db / 10.0))


def list_name(L):
    return f"DetNet + list {L}"


def detect_all(det, X, H, snr_db, points, skip_ml=False, list_users=()):
    """Decisions of every detector on one test set, and their times."""
    Xt, Ht = torch.as_tensor(X), torch.as_tensor(H)
    pts = torch.as_tensor(points)
    nv = noise_variance(H, snr_db, points)  # a float for a fixed channel
    nv = float(nv) if H.ndim == 2 else torch.as_tensor(nv)
    out, times = {}, {}

    def run(name, func):
        start = time.perf_counter()
        out[name] = func()
        times[name] = (time.perf_counter() - start) / len(X)

    def slice_(s):
        return pts[nearest_point(s, pts)].numpy()

    run("ZF", lambda: slice_(zero_forcing(Xt, Ht)))
    run("MMSE", lambda: slice_(mmse(Xt, Ht, nv, pts)))
    run("MMSE-SIC", lambda: mmse_sic(Xt, Ht, nv, pts).numpy())
    run("PGD (annealed)", lambda: slice_(projected_gradient(
        Xt, Ht, pts, n_iter=30, step=1.9, softness=(2.0, 0.3))))
    channels = None if H.ndim == 2 else H
    run("DetNet", lambda: det.predict(X, channels=channels))
    for L in list_users:
        # the list stage (Chase decoding with the likelihood) on DetNet's output
        det.set_params(list_users=L)
        run(list_name(L), lambda: det.predict(X, channels=channels))
        det.set_params(list_users=0)
    nodes = None
    if not skip_ml:
        start = time.perf_counter()
        S, nodes = sphere_decoder(X, H, points, return_nodes=True)
        times["ML"] = (time.perf_counter() - start) / len(X)
        out["ML"] = S
    return out, times, nodes


def ber_rows(det, n_tx, n_rx, modulation, snrs, n_test, channel, seed, skip_ml=False,
             list_users=(), timing=None):
    """BER table rows of every detector; with a list ``timing``, one row of
    per-transmission times (and the sphere decoder's nodes) per SNR."""
    points, _ = mimo_constellation(modulation)
    lists = [list_name(L) for L in list_users]
    methods = METHODS[:-1] + lists + ["ML"]
    head = (["SNR (dB)"] + methods
            + ([] if skip_ml else [f"{m} / ML" for m in ["DetNet"] + lists]))
    rows, curves = [], {m: [] for m in methods}
    for snr in snrs:
        X, y, H = make_mimo(n_test, n_tx, n_rx, snr_db=snr, modulation=modulation,
                            channel=channel, random_state=seed + int(10 * snr))
        out, times, nodes = detect_all(det, X, H, snr, points, skip_ml=skip_ml,
                                       list_users=list_users)
        if timing is not None and nodes is not None:
            timing.append([f"{snr:g}"]
                          + [f"{1e6 * times[m]:.0f}" for m in ["MMSE-SIC", "DetNet"] + lists]
                          + [f"{1e6 * times['ML']:.0f}", f"{nodes.mean():.0f}",
                             f"{nodes.max()}"])
        ber = {m: bit_error_rate(y, out[m], alphabet=points) for m in out}
        for m in methods:
            curves[m].append(ber.get(m, np.nan))
        ml = ber.get("ML")
        rows.append([f"{snr:g}"] + [f"{ber[m]:.3g}" if m in ber else "-" for m in methods]
                    + ([f"{ber[m] / ml:.2f}" if ml else "-" for m in ["DetNet"] + lists]
                       if not skip_ml else []))
        print(f"  {modulation} {n_tx}x{n_rx} {snr} dB:",
              {m: f"{v:.3g}" for m, v in ber.items()}, flush=True)
    return head, rows, curves


def correlated_channel(n_rx, n_tx, rho, seed):
    rng = np.random.RandomState(seed)
    R_rx = np.real(sqrtm(toeplitz(rho ** np.arange(n_rx))))
    R_tx = np.real(sqrtm(toeplitz(rho ** np.arange(n_tx))))
    return R_rx @ rng.standard_normal((n_rx, n_tx)) @ R_tx


def train(n_tx, n_rx, modulation, snr_range, n_train, epochs, channel, seed, verbose,
          lr, n_layers=30):
    X, y, H = make_mimo(n_train, n_tx, n_rx, snr_db=snr_range, modulation=modulation,
                        channel=channel, random_state=seed)
    fixed = not isinstance(channel, str) or channel == "fixed"
    det = DetNetClassifier(channel=H if fixed else None, n_layers=n_layers,
                           max_epochs=epochs, lr=lr, random_state=0,
                           verbose=verbose)
    start = time.perf_counter()
    det.fit(X, y, channels=None if fixed else H)
    fit_time = time.perf_counter() - start
    print(f"trained {modulation} {n_tx}x{n_rx} in {fit_time:.0f} s", flush=True)
    return det, fit_time, len(det.net_.history)


SPEED_HEAD = ["setting", "SNR (dB)", "DetNet (us)", "MMSE (us)",
              "sphere decoder, mean (us)", "sphere decoder, worst (us, est.)", "mean nodes",
              "worst nodes", "decoder / DetNet, mean", "decoder / DetNet, worst"]


def speed_rows(settings, n_batch=1000):
    """Per-transmission times at batch ``n_batch`` (float32 for DetNet, its
    fast path; float64 for MMSE), and the sphere decoder on ``n_ml`` of
    them with its visited nodes."""
    rows = []
    for label, (det, n_tx, n_rx, modulation, snrs, n_ml) in settings.items():
        points, _ = mimo_constellation(modulation)
        pts = torch.as_tensor(points)
        for snr in snrs:
            X, y, H = make_mimo(n_batch, n_tx, n_rx, snr_db=snr, modulation=modulation,
                                random_state=99)
            nv = torch.as_tensor(noise_variance(H, snr, points))
            X32, H32 = X.astype(np.float32), H.astype(np.float32)
            det.predict(X32[:10], channels=H32[:10])  # warm-up
            # best of three runs each: the machine is shared
            t_det, _ = best_time(lambda: det.predict(X32, channels=H32), 3)
            t_mmse, _ = best_time(
                lambda: mmse(torch.as_tensor(X), torch.as_tensor(H), nv, pts), 3)
            t_ml, (_, nodes) = best_time(lambda: sphere_decoder(
                X[:n_ml], H[:n_ml], points, return_nodes=True), 1 if n_ml < 1000 else 2)
            t_det, t_mmse, t_ml = t_det / n_batch, t_mmse / n_batch, t_ml / n_ml
            # the decoder's time grows with the nodes it visits: its worst case
            # is its mean time scaled by worst / mean nodes
            t_worst = t_ml * nodes.max() / nodes.mean()
            rows.append([label, f"{snr:g}", f"{1e6 * t_det:.0f}", f"{1e6 * t_mmse:.0f}",
                         f"{1e6 * t_ml:.0f} ({n_ml})", f"{1e6 * t_worst:.0f}",
                         f"{nodes.mean():.0f}", f"{nodes.max()}",
                         f"{t_ml / t_det:.1f}", f"{t_worst / t_det:.0f}"])
            print("  speed", rows[-1], flush=True)
    return rows


def speed_section(speed, note=""):
    return ["## Detection time per transmission (batch of 1000, one thread)", "",
            "DetNet runs in float32 (its fast path), MMSE in float64, both on the "
            "batch, best of three runs; the sphere decoder on the number of "
            "transmissions in brackets (best of two runs at 1000, one run at 50). Its worst-case time is estimated as its mean "
            "time times worst / mean visited nodes (its time grows with the nodes). "
            + note,
            "", "The sphere decoder is exact but its cost depends on the noise "
            "and the channel; it runs here as a plain Python loop, so its times "
            "are far above a compiled decoder's (the issue's trial measured a "
            "compiled one at 36 us per sample at 30x60 BPSK, 8 dB): the visited "
            "nodes are the implementation-independent figure. DetNet's cost "
            "does not depend on SNR or conditioning.", "",
            table(SPEED_HEAD, speed), ""]


def plot(curves, snrs, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for m in curves:
        ax.semilogy(snrs, curves[m], "o-" if m.startswith("DetNet") or m == "ML" else ".--",
                    label=m)
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("bit error rate")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fixed_section(args):
    """DetNet on one fixed correlated channel, against every detector."""
    H_fixed = correlated_channel(60, 30, 0.55, 7)
    cache = args.fixed_model
    if cache is not None and cache.exists():
        # a network this script trained and saved with the same settings
        det, fit_time, epochs = pickle.loads(cache.read_bytes())
        print(f"loaded the fixed-channel DetNet from {cache}", flush=True)
        origin = f", loaded from the cache `{cache.name}`"
    else:
        origin = ""
        det, fit_time, epochs = train(30, 60, "bpsk", (7, 14), args.n_train_fixed,
                                      args.epochs_fixed, H_fixed, 1, args.verbose,
                                      args.lr_fixed, n_layers=args.layers_fixed)
        if cache is not None:
            cache.write_bytes(pickle.dumps((det, fit_time, epochs)))
    timing = []
    head, rows, _ = ber_rows(det, 30, 60, "bpsk", [8, 10, 12], args.n_test, H_fixed,
                             2000, list_users=args.list_users, timing=timing)
    lists = [list_name(L) for L in args.list_users]
    time_head = (["SNR (dB)"] + [f"{m} (us)" for m in ["MMSE-SIC", "DetNet"] + lists]
                 + ["sphere decoder (us)", "mean nodes", "worst nodes"])
    return ["## Fixed channel: one 60 x 30 channel, Toeplitz correlation 0.55", "",
            f"`R_rx^1/2 G R_tx^1/2` with Toeplitz `0.55^|i-j|` at both ends; "
            f"DetNet ({args.layers_fixed} layers) trained for {epochs} epochs "
            f"({fit_time / 60:.1f} min) on "
            f"{args.n_train_fixed} transmissions, lr {args.lr_fixed:g}{origin}. "
            "'DetNet + list L' is the same fitted network with `list_users=L`: "
            "Chase decoding of its L least reliable users with the likelihood "
            "`||x - H s||^2` (2^L candidates).", "",
            table(head, rows), "",
            f"Time per transmission on the {args.n_test} test transmissions "
            "(float64, one call on the whole set; the sphere decoder is a plain "
            "Python loop, its visited nodes are the implementation-independent "
            "figure):", "", table(time_head, timing), ""]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--lr-fixed", type=float, default=1e-3,
                        help="learning rate for the fixed channel, where DetNet "
                             "must learn most (its start is far from ML)")
    parser.add_argument("--epochs-fixed", type=int, default=20)
    parser.add_argument("--layers-fixed", type=int, default=30,
                        help="DetNet layers for the fixed channel (the paper: 3 x users); "
                             "its ill-conditioned Gram needs more iterations")
    parser.add_argument("--fixed-model", type=Path, default=None,
                        help="a file caching the fixed-channel DetNet: trained and "
                             "saved there if missing, loaded (no training) if present; "
                             "the cache does not record the training flags")
    parser.add_argument("--n-train-fixed", type=int, default=None,
                        help="default: half of --n-train")
    parser.add_argument("--fixed-only", action="store_true",
                        help="run the fixed-channel section alone, into "
                             "results/detnet_fixed.md")
    parser.add_argument("--speed-only", action="store_true",
                        help="run the speed section alone, into results/detnet_speed.md")
    parser.add_argument("--n-test", type=int, default=10000,
                        help="transmissions per SNR point (x users = symbols)")
    parser.add_argument("--list-users", type=int, nargs="*", default=[8],
                        help="DetNet's list stage (list_users=L: Chase decoding of "
                             "the L least reliable users with the likelihood), one "
                             "column per L")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=RESULTS,
                        help="folder of the reports and the figure (e.g. /tmp/x for "
                             "a --quick smoke run, which would otherwise overwrite "
                             "the results)")
    args = parser.parse_args()
    out_dir = args.out_dir
    if args.quick:
        args.n_train, args.epochs, args.n_test = 3000, 2, 1000
        args.epochs_fixed = 2
    if args.n_train_fixed is None:
        args.n_train_fixed = args.n_train // 2
    torch.set_num_threads(args.threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/detnet.py " + " ".join(sys.argv[1:])
    md = ["# DetNet: MIMO detection", "", f"Command: `{command.strip()}`", "",
          f"Machine: {machine('cpu')}; torch {torch.__version__}; "
          f"{time.strftime('%Y-%m-%d')}", "",
          "Bit error rates on the same test draws for every detector; MMSE and "
          "MMSE-SIC get each sample's exact noise variance. 'PGD (annealed)' is "
          "the model-based algorithm DetNet unrolls and starts from (30 "
          "iterations, step 1.9 / ||H^T H||, ramp width 2 -> 0.3); ML is the "
          "exact sphere decoder.", ""]
    out_path = out_dir / "detnet.md"
    snrs = [8, 9, 10, 11, 12, 13]

    if args.speed_only:
        # the time of a forward pass does not depend on the weights: a short
        # fit gives networks of the benchmark's architecture
        with threadpool_limits(args.threads):
            bpsk, _, _ = train(30, 60, "bpsk", (7, 14), 2000, 1, "iid", 0, 0, args.lr)
            qam, _, _ = train(15, 25, "16qam", (11, 19), 2000, 1, "iid", 3, 0, args.lr)
            speed = speed_rows({
                "BPSK 30x60": (bpsk, 30, 60, "bpsk", [8, 12], 1000),
                "16-QAM 15x25": (qam, 15, 25, "16qam", [8, 12, 16], 50),
            }, n_batch=1000)
        md += speed_section(speed, "Networks of the default architecture, fitted for "
                            "one epoch: a forward pass costs the same whatever the "
                            "weights.")
        (out_dir / "detnet_speed.md").write_text("\n".join(md))
        print(f"wrote {out_dir / 'detnet_speed.md'}")
        return
    if args.fixed_only:
        with threadpool_limits(args.threads):
            md += fixed_section(args)
        (out_dir / "detnet_fixed.md").write_text("\n".join(md))
        print(f"wrote {out_dir / 'detnet_fixed.md'}")
        return
    with threadpool_limits(args.threads):
        # 1. the paper's setting
        det, fit_time, epochs = train(30, 60, "bpsk", (7, 14), args.n_train, args.epochs,
                                      "iid", 0, args.verbose, args.lr)
        head, rows, curves = ber_rows(det, 30, 60, "bpsk", snrs, args.n_test, "iid",
                                      1000, list_users=args.list_users)
        md += ["## 30 users x 60 antennas, BPSK, i.i.d. channel per sample", "",
               f"DetNet: 30 layers, trained on {args.n_train} transmissions "
               f"(SNR uniform in [7, 14] dB, plus 4x simulated ones each epoch) for "
               f"{epochs} epochs in {fit_time / 60:.1f} min; tested on "
               f"{args.n_test} transmissions ({30 * args.n_test} symbols) per SNR.",
               "", table(head, rows), "", "![BER](detnet_ber.png)", ""]
        plot(curves, snrs, out_dir / "detnet_ber.png",
             "30 x 60 BPSK, i.i.d. channel")
        out_path.write_text("\n".join(md))
        iid_det = det

        # 2. one fixed correlated channel
        md += fixed_section(args)
        out_path.write_text("\n".join(md))

        # 3. complex modulations
        complex_dets = {}
        for modulation, n_tx, n_rx, train_snr, test_snrs in [
                ("qpsk", 20, 30, (7, 15), [8, 10, 12, 14]),
                ("16qam", 15, 25, (11, 19), [12, 14, 16, 18])]:
            det, fit_time, epochs = train(n_tx, n_rx, modulation, train_snr,
                                          args.n_train // 2, max(args.epochs // 2, 1),
                                          "iid", 3, args.verbose, args.lr)
            head, rows, _ = ber_rows(det, n_tx, n_rx, modulation, test_snrs,
                                     max(args.n_test // 5, 500), "iid", 3000,
                                     list_users=args.list_users)
            complex_dets[modulation] = det
            md += [f"## {modulation.upper()} {n_tx} x {n_rx} (complex), i.i.d. channel",
                   "", f"Real model {2 * n_tx} x {2 * n_rx}; DetNet trained on SNR "
                   f"uniform in {list(train_snr)} dB for {epochs} epochs "
                   f"({fit_time / 60:.1f} min); Gray-coded bit error rate.", "",
                   table(head, rows), ""]
            out_path.write_text("\n".join(md))

        # 4. speed
        speed = speed_rows({
            "BPSK 30x60": (iid_det, 30, 60, "bpsk", [8, 12], 1000),
            "16-QAM 15x25": (complex_dets["16qam"], 15, 25, "16qam", [8, 12, 16], 50),
        }, n_batch=1000)
        md += speed_section(speed)
        out_path.write_text("\n".join(md))
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
