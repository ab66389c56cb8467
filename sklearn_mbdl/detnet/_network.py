"""The DetNet module, its loss, and the simulation of training rows."""

import numpy as np
import torch
from torch import nn

from ..prox import nearest_point, soft_constellation
from ..solvers import detection_step, softness_schedule


class DetNet(nn.Module):
    """Projected gradient descent unrolled to ``n_layers`` learned layers.

    Layer ``q`` computes (DetNet's layer without latent state)::

        r = (I + d2_q H^T H) s - d1_q H^T x        # gradient step
        z = relu(W1_q r + b1_q)
        s_new = soft_constellation(W2_q z + b2_q, points, t_q)
        s <- residual * s_new + (1 - residual) * s

    where the gradient step is :func:`~sklearn_mbdl.solvers.detection_step`
    with ``(a, b) = (-d2_q, -d1_q)``, the soft projection is
    :func:`~sklearn_mbdl.prox.soft_constellation` with a learned ramp width
    ``t_q`` (DetNet's piecewise-linear soft sign for BPSK), and every layer's
    estimate is returned so the loss can weight them all. With a latent
    state (``latent_size > 0``, the paper's full layer) ``z`` also sees the
    current estimate ``s`` and the state ``v``, and ``v <- W3_q z + b3_q``.

    At initialisation the first ``2 n_tx`` hidden units pass ``r`` through
    (``W2 relu(W1 r) = r``, the other units enter ``W2`` with zero weight),
    ``d1 = d2 = -step`` and the ramp widths ``t_q`` decrease geometrically
    along ``softness``: the untrained network *is* the annealed projected
    gradient of :func:`~sklearn_mbdl.solvers.projected_gradient`, and
    training starts from the model-based algorithm.

    Inputs are rows of normalised sufficient statistics: ``H^T x`` (``n_tx``
    values) followed, when no fixed ``gram`` is given, by the flattened
    per-sample ``H^T H``.

    Parameters
    ----------
    n_tx : int
        Number of (real) users.
    points : array-like of shape (n_points,)
        Sorted alphabet, scaled to ``[-1, 1]``.
    n_layers : int
    hidden_size : int
        Width of ``z`` (at least ``2 n_tx``).
    residual : float
        Weight of the new estimate in each layer's update.
    step : float
        Initial gradient step (``1 / ||H^T H||`` of typical channels).
    latent_size : int, default=0
        Size of the latent state passed between layers (0: none).
    softness : (float, float), default=(2.0, 0.3)
        Initial ramp widths of the first and last layers.
    gram : array-like of shape (n_tx, n_tx), optional
        A fixed normalised ``H^T H``.
    """

    def __init__(self, n_tx, points, n_layers, hidden_size, residual, step,
                 latent_size=0, softness=(2.0, 0.3), gram=None):
        super().__init__()
        self.n_tx, self.n_layers, self.residual = n_tx, n_layers, residual
        self.latent_size = latent_size
        self.register_buffer("points", torch.as_tensor(points, dtype=torch.float32))
        self.register_buffer("gram", None if gram is None
                             else torch.as_tensor(gram, dtype=torch.float32))
        K, h, m = n_tx, hidden_size, latent_size
        n_in = K + (K + m if m else 0)  # r, then (s, v) with a latent state
        W1 = torch.randn(n_layers, h, n_in) / np.sqrt(n_in)
        W2 = torch.zeros(n_layers, K, h)
        eye = torch.eye(K)
        W1[:, :2 * K, :K] = torch.cat([eye, -eye])
        W1[:, :2 * K, K:] = 0.0
        W2[:, :, :K], W2[:, :, K:2 * K] = eye, -eye
        self.W1, self.W2 = nn.Parameter(W1), nn.Parameter(W2)
        self.b1 = nn.Parameter(torch.zeros(n_layers, h))
        self.b1.data[:, 2 * K:] = 0.1
        self.b2 = nn.Parameter(torch.zeros(n_layers, K))
        if m:
            self.W3 = nn.Parameter(torch.randn(n_layers, m, h) / np.sqrt(h))
            self.b3 = nn.Parameter(torch.zeros(n_layers, m))
        # steps in units of the initial step, ramp widths as logs: every
        # parameter is of order one for the optimiser
        self.step_unit = float(step)
        self.step_gram = nn.Parameter(torch.ones(n_layers))
        self.step_corr = nn.Parameter(torch.ones(n_layers))
        self.log_softness = nn.Parameter(torch.as_tensor(
            np.log(softness_schedule(softness, n_layers)), dtype=torch.float32))

    def forward(self, rows):
        """Every layer's estimate.

        Parameters
        ----------
        rows : torch.Tensor of shape (n_samples, n_tx) or (n_samples, n_tx + n_tx**2)
            Normalised ``H^T x``, followed by the flattened ``H^T H`` of each
            sample unless the module holds a fixed ``gram``.

        Returns
        -------
        torch.Tensor of shape (n_samples, n_layers, n_tx)
        """
        K = self.n_tx
        Htx = rows[:, :K]
        HtH = self.gram if self.gram is not None else rows[:, K:].reshape(-1, K, K)
        s = torch.zeros_like(Htx)
        v = Htx.new_zeros(Htx.shape[0], self.latent_size)
        estimates = []
        for q in range(self.n_layers):
            r = detection_step(s, Htx, HtH, self.step_unit * self.step_gram[q],
                               self.step_unit * self.step_corr[q])
            if self.latent_size:
                r = torch.cat([r, s, v], dim=1)
            z = torch.relu(r @ self.W1[q].T + self.b1[q])
            if self.latent_size:
                v = z @ self.W3[q].T + self.b3[q]
            s_new = soft_constellation(z @ self.W2[q].T + self.b2[q], self.points,
                                       self.log_softness[q].exp())
            s = self.residual * s_new + (1.0 - self.residual) * s
            estimates.append(s)
        return torch.stack(estimates, dim=1)


class FinalLayerMSE(nn.Module):
    """Mean squared error of the last layer's estimate.

    The DetNet paper sums the errors of all layers (weighted by
    ``log(layer)``). Here the layers start as an annealed projected
    gradient whose early iterates are soft by design (wide ramps); a loss
    on them pulls those ramps narrow and undoes the annealing, so only the
    last layer's error is trained.
    """

    def __init__(self):
        super().__init__()

    def forward(self, estimates, target):
        """The loss.

        Parameters
        ----------
        estimates : torch.Tensor of shape (n_samples, n_layers, n_tx)
            Every layer's estimate, as :class:`DetNet` returns them.
        target : torch.Tensor of shape (n_samples, n_tx)
            The true symbols (in the network's scaled units).

        Returns
        -------
        torch.Tensor
            A scalar.
        """
        return ((estimates[:, -1] - target) ** 2).mean()


def _symbol_accuracy(net, X, y):
    """Validation symbol accuracy of the last layer (an EpochScoring)."""
    points = net.module_.points
    with torch.no_grad():
        s = net.forward(X)[:, -1]
    y = torch.as_tensor(y, device=s.device)
    return float((nearest_point(s, points) == nearest_point(y, points)).float().mean())


def _simulate_symbols(rng, n_samples, *, gram, chol, noise_std, points):
    """New symbols and noise on the training channels (SimulatedRows).

    Row ``i`` uses channel ``i mod n_channels`` with its noise level:
    ``H^T x = H^T H u + noise_std L e`` with ``L L^T = H^T H`` (the law of
    ``H^T w``), all in the normalised units of :func:`_statistics`.
    """
    n_channels, K = noise_std.shape[0], chol.shape[-1]
    which = np.arange(n_samples) % n_channels
    u = points[rng.randint(len(points), size=(n_samples, K))]
    e = rng.standard_normal((n_samples, K)).astype(np.float32)
    if gram.ndim == 2:
        Htx = u @ gram + noise_std[which, None] * (e @ chol.T)
        return Htx, u
    G, L = gram[which], chol[which]
    Htx = np.einsum("nij,nj->ni", G, u) + noise_std[which, None] * np.einsum(
        "nij,nj->ni", L, e)
    return np.concatenate([Htx, G.reshape(n_samples, -1)], axis=1), u
