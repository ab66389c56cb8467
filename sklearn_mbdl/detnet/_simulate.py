"""Simulated MIMO transmissions ``x = H s + w``: the modulations' alphabets,
the real decomposition of complex channels and the draw behind
:func:`sklearn_mbdl.datasets.make_mimo`."""

import numpy as np

__all__ = ["MODULATIONS", "constellation", "real_decomposition", "simulate_mimo"]

#: Real-decomposed alphabets: the values one real dimension takes.
MODULATIONS = {
    "bpsk": (np.array([-1.0, 1.0]), False),
    "qpsk": (np.array([-1.0, 1.0]), True),
    "16qam": (np.array([-3.0, -1.0, 1.0, 3.0]), True),
}


def constellation(modulation):
    """The real alphabet of ``modulation`` and whether it is complex (see
    :func:`sklearn_mbdl.datasets.mimo_constellation`)."""
    if modulation not in MODULATIONS:
        raise ValueError(
            f"modulation must be one of {sorted(MODULATIONS)}, got {modulation!r}."
        )
    points, is_complex = MODULATIONS[modulation]
    return points.copy(), is_complex


def real_decomposition(H):
    """``[[Re, -Im], [Im, Re]]`` of complex channels, on the last two axes."""
    top = np.concatenate([H.real, -H.imag], axis=-1)
    bottom = np.concatenate([H.imag, H.real], axis=-1)
    return np.concatenate([top, bottom], axis=-2)


def simulate_mimo(rng, n_samples, n_tx, n_rx, *, snr_range, modulation, channel):
    """The draw behind :func:`sklearn_mbdl.datasets.make_mimo` (see there for
    the parameters; ``snr_range`` is the checked ``(low, high)`` in dB):
    channels, symbols and noise from ``rng``; returns ``X, y, H``."""
    points, is_complex = constellation(modulation)
    low, high = snr_range
    K, N = (2 * n_tx, 2 * n_rx) if is_complex else (n_tx, n_rx)

    def draw(*shape):
        if is_complex:
            G = (rng.standard_normal((*shape, n_rx, n_tx))
                 + 1j * rng.standard_normal((*shape, n_rx, n_tx))) / np.sqrt(2.0)
            return real_decomposition(G)
        return rng.standard_normal((*shape, n_rx, n_tx))

    if isinstance(channel, str):
        if channel not in ("iid", "fixed"):
            raise ValueError(
                f"channel must be 'iid', 'fixed' or an array, got {channel!r}."
            )
        H = draw(n_samples) if channel == "iid" else draw()
    else:
        H = np.asarray(channel)
        if np.iscomplexobj(H):
            if not is_complex:
                raise ValueError("a complex channel needs a complex modulation.")
            H = real_decomposition(H)
        H = H.astype(np.float64)
        if not np.all(np.isfinite(H)):
            raise ValueError("channel contains NaN or infinity.")
        if H.shape[-2:] != (N, K) or H.ndim not in (2, 3) or (
                H.ndim == 3 and H.shape[0] != n_samples):
            raise ValueError(
                f"channel has shape {H.shape}; expected ({N}, {K}) or "
                f"({n_samples}, {N}, {K}) for {n_tx} users and {n_rx} antennas "
                f"({modulation})."
            )
    y = points[rng.randint(len(points), size=(n_samples, K))]
    snr = 10.0 ** (rng.uniform(low, high, size=n_samples) / 10.0)
    energy = float(np.mean(points ** 2))
    frobenius = np.sum(H ** 2, axis=(-2, -1))
    sigma = np.sqrt(energy * frobenius / (K * snr))
    clean = y @ H.T if H.ndim == 2 else np.einsum("nrk,nk->nr", H, y)
    X = clean + sigma[:, None] * rng.standard_normal((n_samples, N))
    return X, y.astype(np.int64), H
