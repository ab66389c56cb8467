"""
DetNet against the classic MIMO detectors: bit error rate against SNR
=====================================================================

``n_tx`` users each send a BPSK symbol :math:`\\pm 1`; ``n_rx`` antennas
receive :math:`x = H s + w`. Maximum likelihood,
:math:`\\min_{s \\in \\{\\pm1\\}^{n_{tx}}} \\|x - H s\\|^2`, is exact but its
cost can grow as :math:`2^{n_{tx}}`; the linear detectors (zero forcing,
MMSE) are cheap but far from it, and ordered MMSE-SIC sits between.
DetNet (:class:`~sklearn_mbdl.DetNetClassifier`) unrolls projected gradient
descent into a network with learned layers (see :ref:`detnet`).

This example trains a small DetNet on 8 users and 16 antennas (small
enough for the exact sphere decoder to be cheap) in a few seconds and plots
every detector's bit error rate. The benchmark ``benchmarks/detnet.py``
runs the paper's 30 x 60 setting.
"""

# %%
# Training data: transmissions over random channels
# -------------------------------------------------
# :func:`~sklearn_mbdl.datasets.make_mimo` draws a new Gaussian channel per
# transmission (returned in ``H``) and an SNR uniform in [7, 14] dB. The
# channels are passed to ``fit`` and ``predict`` as metadata.

import matplotlib.pyplot as plt
import numpy as np
import torch

from sklearn_mbdl import DetNetClassifier
from sklearn_mbdl.datasets import make_mimo
from sklearn_mbdl.metrics import bit_error_rate
from sklearn_mbdl.prox import nearest_point
from sklearn_mbdl.solvers import mmse, mmse_sic, sphere_decoder, zero_forcing

torch.set_num_threads(1)
n_tx, n_rx = 8, 16
X, y, H = make_mimo(4000, n_tx, n_rx, snr_db=(7, 14), random_state=0)
detnet = DetNetClassifier(n_layers=12, max_epochs=4, lr=1e-3, random_state=0)
detnet.fit(X, y, channels=H)

# %%
# Bit error rate against SNR
# --------------------------
# Every detector sees the same test transmissions; MMSE and MMSE-SIC get the
# exact noise variance of each one. "DetNet + list 4" is the same network
# with its list stage (``list_users=4``): the 4 users DetNet is least sure
# of take either symbol, and of the 16 candidates the one nearest ``x``
# through ``H`` (the likelihood) is kept.

points = torch.tensor([-1.0, 1.0], dtype=torch.float64)
snrs = [6, 8, 10, 12, 14]
curves = {name: [] for name in ["ZF", "MMSE", "MMSE-SIC", "DetNet", "DetNet + list 4",
                                "ML"]}
for snr in snrs:
    X_test, y_test, H_test = make_mimo(3000, n_tx, n_rx, snr_db=snr, random_state=snr)
    Xt, Ht = torch.tensor(X_test), torch.tensor(H_test)
    noise_var = torch.tensor((H_test ** 2).sum((1, 2)) / (n_tx * 10 ** (snr / 10)))
    decisions = {
        "ZF": points[nearest_point(zero_forcing(Xt, Ht), points)].numpy(),
        "MMSE": points[nearest_point(mmse(Xt, Ht, noise_var, points), points)].numpy(),
        "MMSE-SIC": mmse_sic(Xt, Ht, noise_var, points).numpy(),
        "DetNet": detnet.predict(X_test, channels=H_test),
        "DetNet + list 4": detnet.set_params(list_users=4).predict(X_test,
                                                                   channels=H_test),
        "ML": sphere_decoder(X_test, H_test, [-1.0, 1.0]),
    }
    for name, decided in decisions.items():
        curves[name].append(bit_error_rate(y_test, decided))
    detnet.set_params(list_users=0)

fig, ax = plt.subplots(figsize=(6, 4.2))
for name, ber in curves.items():
    ax.semilogy(snrs, np.maximum(ber, 1e-5),
                "o-" if name.startswith("DetNet") or name == "ML" else ".--", label=name)
ax.set_xlabel("SNR (dB)")
ax.set_ylabel("bit error rate")
ax.set_title(f"{n_tx} users x {n_rx} antennas, BPSK")
ax.grid(True, which="both", alpha=0.3)
ax.legend()
fig.tight_layout()
plt.show()

# %%
# What the network learned
# ------------------------
# DetNet starts as the annealed projected gradient of
# :func:`~sklearn_mbdl.solvers.projected_gradient` (long steps, a soft
# projection whose ramp narrows layer after layer) and training adjusts the
# steps and ramp widths of each layer along with its weight matrices.

module = detnet.net_.module_
steps = (module.step_unit * module.step_gram).detach().numpy()
ramps = module.log_softness.exp().detach().numpy()
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(np.arange(1, len(steps) + 1), steps, "o-", label="gradient step")
ax.plot(np.arange(1, len(ramps) + 1), ramps, "s-", label="ramp width")
ax.set_xlabel("layer")
ax.legend()
fig.tight_layout()
plt.show()
