"""Devices, seeding, parameter checks and numpy <-> torch conversion.

- device choice (``"cpu"``, ``"cuda"``, ``"auto"``) resolved once in ``fit``,
- seeding from ``random_state`` without touching the caller's global torch
  random state,
- input validation that raises ``ValueError`` before any torch code runs,
- numpy <-> torch conversion: training computes in float32, results are
  computed in the input's float dtype (float64 in, float64 out),
- the skorch net that trains a torch module (composition: the estimator
  keeps it in ``net_``; it never subclasses skorch).
"""

import contextlib
import numbers
import sys
import threading
import warnings

import numpy as np
import torch
from sklearn.utils import check_array, check_random_state, check_scalar
from sklearn.utils._param_validation import (  # (re-exported: one import point)
    HasMethods,
    Hidden,
    Interval,
    InvalidParameterError,
    Options,
    RealNotInt,
    StrOptions,
)
from skorch.callbacks import Callback


__all__ = [
    "FLOAT_DTYPES",
    "ROUTING_HINT",
    "TRAINING_CONSTRAINTS",
    "DEVICE_CONSTRAINT",
    "HasMethods",
    "Hidden",
    "Interval",
    "InvalidParameterError",
    "Options",
    "RealNotInt",
    "StrOptions",
    "Announce",
    "SimulatedRows",
    "check_bool",
    "check_matrix",
    "check_number",
    "check_number_or_range",
    "check_options",
    "check_routed",
    "progress",
    "resolve_device",
    "row_chunks",
    "seeded",
    "to_numpy",
    "to_tensor",
    "torch_dtype",
    "torch_seed",
    "warn_if_out_of_range",
]

FLOAT_DTYPES = (np.float64, np.float32)


_DEVICES = "'cpu', 'cuda', 'auto' or 'accelerate'"


def resolve_device(device):
    """Resolve ``device`` to a torch device string.

    ``"auto"`` picks ``"cuda"`` when a GPU is visible and ``"cpu"`` otherwise;
    asking for ``"cuda"`` on a machine without a GPU is an error.
    ``"accelerate"`` is the device HF accelerate gives this process (the
    GPU of its rank under ``accelerate launch``); trained estimators then
    train through accelerate (:meth:`TorchEstimator._make_net`).
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise ValueError(f"device must be {_DEVICES}, got {device!r}.")
    if device == "accelerate":
        return str(_accelerate().PartialState().device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but no CUDA device is available; "
                "use device='cpu' or device='auto'."
            )
        return device
    raise ValueError(f"device must be {_DEVICES}, got {device!r}.")


# the ``device`` parameter's values ("cuda:<index>" and torch.device are
# accepted and not advertised)
DEVICE_CONSTRAINT = [
    StrOptions({"cpu", "cuda", "auto", "accelerate"}),
    Hidden(StrOptions({f"cuda:{index}" for index in range(64)})),
    Hidden(torch.device),
]


# the constraints of the parameters every trained estimator shares
TRAINING_CONSTRAINTS = {
    "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
    "lr": [Interval(numbers.Real, 0, None, closed="neither")],
    "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
    "validation_fraction": [Interval(numbers.Real, 0, 0.5, closed="both")],
    "augmentation": [Interval(numbers.Real, 0, None, closed="left")],
    "device": DEVICE_CONSTRAINT,
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


def torch_dtype(array):
    """The torch dtype results are computed in for ``array``: float64 for
    float64 input, float32 otherwise (scikit-learn's dtype rule)."""
    return torch.float64 if array.dtype == np.float64 else torch.float32


def _accelerate():
    """The ``accelerate`` package, or an ImportError that names the fix."""
    try:
        import accelerate
    except ImportError as exc:
        raise ImportError(
            "device='accelerate' trains through HF accelerate, which is not "
            'installed: pip install "sklearn-mbdl[accelerate]" (or use '
            "device='cpu', 'cuda' or 'auto')."
        ) from exc
    return accelerate


def _accelerated(net_class):
    """``net_class`` with skorch's ``AccelerateMixin``: the training loop of
    skorch, with the module, optimizer, scheduler and data loaders prepared
    by an ``accelerate.Accelerator`` (data-parallel over the processes of
    ``accelerate launch``, mixed precision from its configuration)."""
    from skorch.hf import AccelerateMixin

    cls = type(f"Accelerated{net_class.__name__}", (AccelerateMixin, net_class), {})
    cls._plain_class = net_class
    return cls


def _no_print(*args, **kwargs):
    """The epoch table's sink when ``verbose=0`` under accelerate."""


def _drop_accelerator(net, device):
    """Turn a trained accelerated net back into its plain skorch class.

    The accelerator (and the print function it lent the epoch table) cannot
    be pickled; after training skorch has unwrapped the module, so the net
    predicts and pickles like one trained without accelerate.
    """
    from accelerate.optimizer import AcceleratedOptimizer

    for name in net._optimizers:
        optimizer = getattr(net, name + "_")
        if isinstance(optimizer, AcceleratedOptimizer):
            setattr(net, name + "_", optimizer.optimizer)
    for name in ("accelerator", "unwrap_after_train", "_wrapped_with_accelerator"):
        vars(net).pop(name, None)
    net.__class__ = type(net)._plain_class
    net.callbacks__print_log__sink = print
    for _, callback in net.callbacks_:
        if hasattr(callback, "sink"):
            callback.sink = print
    net.device = device
    return net


def torch_seed(random_state):
    """An integer seed for torch drawn from a scikit-learn ``random_state``."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


# torch's random state is global to the process: two fits in threads of one
# process (a threaded Dask worker, joblib's threading backend) would draw
# from it in turn and neither would be reproducible
_SEEDED = threading.RLock()


@contextlib.contextmanager
def seeded(seed, device="cpu"):
    """Run a block with torch seeded by ``seed``, restoring the global state.

    Everything drawn inside (weight init, dropout, shuffling) is reproducible
    and the caller's random state is untouched afterwards. Blocks in
    different threads of one process take turns (torch's random state is
    the process's): fits in threads give the results of sequential fits.
    """
    devices = []
    if str(device).startswith("cuda") and torch.cuda.is_available():
        devices = [torch.device(device).index or 0]
    with _SEEDED, torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def check_options(value, name, options):
    """Raise a ``ValueError`` naming ``name`` unless ``value`` is in ``options``."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(
            f"{name} must be one of {sorted(options)}, got {value!r}."
        )
    return value


def check_bool(value, name):
    """Raise a ``ValueError`` naming ``name`` unless ``value`` is a boolean."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}.")
    return bool(value)


def check_number(value, name, *, min_val=None, max_val=None, integer=False,
                 include_min=True):
    """``sklearn.utils.check_scalar`` that raises ``ValueError`` only.

    Wrong types (a string for ``alpha``) are reported as ``ValueError`` too,
    so callers catch one exception type for every bad parameter.
    """
    target = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, target):
        kind = "an integer" if integer else "a real number"
        raise ValueError(f"{name} must be {kind}, got {value!r}.")
    if isinstance(value, numbers.Real) and not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    if include_min:
        bounds = "both"
    else:
        bounds = "right" if max_val is not None else "neither"
    check_scalar(value, name, target, min_val=min_val, max_val=max_val,
                 include_boundaries=bounds)
    return value


def check_number_or_range(value, name, *, min_val=0.0, positive_range=False):
    """A number, or a range ``(low, high)`` with ``low <= high`` that a
    simulation draws from; returns a float or a pair of floats."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(
                f"{name} must be a number or a pair (low, high), got {value!r}.")
        low, high = (float(check_number(v, name, min_val=min_val)) for v in value)
        if low > high or (positive_range and low <= 0):
            bound = "0 < low <= high" if positive_range else "low <= high"
            raise ValueError(f"{name}=(low, high) needs {bound}, got {value!r}.")
        return (low, high)
    return float(check_number(value, name, min_val=min_val))


def check_matrix(matrix, name, *, n_features=None, dtype=np.float64):
    """Validate a user-given 2-D matrix (e.g. a dictionary)."""
    matrix = check_array(matrix, dtype=dtype, ensure_all_finite=True,
                         input_name=name)
    if n_features is not None and matrix.shape[1] != n_features:
        raise ValueError(
            f"{name} has {matrix.shape[1]} columns (features) but X has "
            f"{n_features} features."
        )
    return matrix


ROUTING_HINT = (
    "Enable metadata routing with sklearn.set_config(enable_metadata_routing=True) "
    "and request the metadata, e.g. est.set_fit_request({name}=True)"
    ".set_score_request({name}=True), so that the meta-estimator passes each "
    "split its own {name} for fitting and for scoring."
)


def _in_cross_validation():
    """Whether the caller runs inside scikit-learn's cross-validation
    (``GridSearchCV``, ``cross_validate``...): its ``_fit_and_score`` is on
    the stack, in this process or in a joblib worker."""
    frame = sys._getframe(1)
    while frame is not None:
        if (frame.f_code.co_name == "_fit_and_score"
                and frame.f_globals.get("__name__", "").startswith("sklearn.")):
            return True
        frame = frame.f_back
    return False


def check_routed(estimator, name, value):
    """Raise when metadata reaches ``fit`` through cross-validation without
    metadata routing.

    Without routing, scikit-learn's cross-validation passes ``fit``'s
    keyword arguments to ``fit`` but nothing to ``score``: an estimator
    whose predictions need the same metadata (DetNet's per-sample
    ``channels``) would score NaN on every split, with warnings only. The
    ``ValueError`` raised here makes every fit fail instead, and the search
    reports it with the way out.

    Parameters
    ----------
    estimator : estimator
        The estimator being fitted (named in the message).
    name : str
        The metadata's name, e.g. ``"channels"``.
    value : object or None
        What ``fit`` received; nothing is checked when it is None.

    Examples
    --------
    >>> from sklearn_mbdl._base import check_routed
    >>> check_routed(object(), "channels", None)  # nothing given: fine
    """
    import sklearn

    if value is None or sklearn.get_config().get("enable_metadata_routing", False):
        return
    if _in_cross_validation():
        raise ValueError(
            f"{type(estimator).__name__}.fit received {name}= inside a "
            f"cross-validation (GridSearchCV, cross_validate...) without metadata "
            f"routing: the scoring would not get {name} and every split would score "
            f"NaN. " + ROUTING_HINT.format(name=name)
        )


def warn_if_out_of_range(X, name, estimator, *, low=0.0, high=1.0, margin=1.0):
    """Warn when ``X`` lies far outside the range ``[low, high]`` an
    estimator expects (beyond ``margin`` on either side).

    The image restorers' priors and noise levels assume images in [0, 1]:
    8-bit images (0-255) restore 16 dB worse, without an error. The check
    is one pass of ``min`` and ``max``.

    Parameters
    ----------
    X : ndarray
    name : str
        What ``X`` is, for the message (e.g. ``"X (clean images)"``).
    estimator : estimator
        Named in the message.
    low, high : float, default=0.0, 1.0
        The expected range.
    margin : float, default=1.0
        How far outside counts as far (noise takes observations a little
        outside).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mbdl._base import warn_if_out_of_range
    >>> warn_if_out_of_range(np.random.rand(4, 8), "X", object())  # no warning
    """
    if X.size == 0:
        return
    lowest, highest = float(np.min(X)), float(np.max(X))
    if lowest < low - margin or highest > high + margin:
        hint = " (8-bit images: divide by 255)" if 100 < highest <= 255 else ""
        warnings.warn(
            f"{type(estimator).__name__}: {name} lies in [{lowest:.4g}, {highest:.4g}] "
            f"but values in [{low:g}, {high:g}] are expected{hint}; the prior and "
            "the noise levels assume that scale, so results will be poor.",
            UserWarning, stacklevel=3,
        )


def row_chunks(n_samples, device, cpu_size=1024):
    """Slices that cut ``n_samples`` rows into inference chunks.

    Iterative solvers and unrolled networks run many elementwise passes over
    their ``(rows, n_components)`` iterates: on a CPU, chunks of about a
    thousand rows stay in cache and ran 2-7 times faster than 8192 rows or
    the whole block (measured on 1e5 x 256 codes); a GPU wants large chunks.
    A solver with a large per-call overhead passes a larger ``cpu_size``.
    """
    size = cpu_size if str(device) == "cpu" else 65536
    return [slice(start, min(start + size, n_samples))
            for start in range(0, n_samples, size)]


def to_tensor(array, device, dtype=None):
    """A numpy array as a torch tensor on ``device`` (no copy on CPU when possible)."""
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:  # e.g. a read-only memmap
        array = array.copy()
    tensor = torch.from_numpy(array)
    return tensor.to(device=device, dtype=dtype)


def to_numpy(tensor, dtype):
    """A tensor back to a numpy array of ``dtype``, wherever it lives."""
    return tensor.detach().cpu().numpy().astype(dtype, copy=False)


class SimulatedRows(Callback):
    """Refill the simulated part of the training set at every epoch.

    The training arrays passed to skorch are the user's rows followed by
    ``len(X) - start`` rows that ``simulate(rng, n)`` draws from the known
    model; this callback overwrites those rows in place before each epoch,
    so the network never sees the same simulation twice. ``seed`` is an
    integer or a ``RandomState`` to continue; with ``skip_first`` the rows
    already hold the first epoch's draw (made from that ``RandomState``).
    The references are dropped when training ends (the fitted net stays
    picklable).
    """

    def __init__(self, simulate, X, y, start, seed, skip_first=False):
        self.simulate = simulate
        self.X = X
        self.y = y
        self.start = start
        self.seed = seed
        self.skip_first = skip_first

    def initialize(self):
        self.rng_ = check_random_state(self.seed)
        self.skip_ = self.skip_first
        return self

    def on_epoch_begin(self, net, **kwargs):
        n = len(self.X) - self.start
        if self.skip_:
            self.skip_ = False
        elif n > 0:
            X_sim, y_sim = self.simulate(self.rng_, n)
            self.X[self.start:] = X_sim
            self.y[self.start:] = y_sim

    def on_train_end(self, net, **kwargs):
        self.simulate = self.X = self.y = self.rng_ = self.seed = None


class Announce(Callback):
    """Print a line naming what is about to train, above skorch's epoch table
    (at ``verbose >= 1``): several tables in one ``fit`` are told apart."""

    def __init__(self, text):
        self.text = text

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        rows = "" if X is None else f" ({len(X)} rows per epoch)"
        print(f"{self.text}{rows}:", flush=True)


def progress(iterable=None, *, verbose, **kwargs):
    """A tqdm progress bar at ``verbose >= 1`` (silent otherwise), for the
    long model-based loops (sphere decoding, splitting solvers).

    Parameters
    ----------
    iterable : iterable, optional
        What to loop over; or give ``total=`` and call ``update``.
    verbose : int
        The estimator's ``verbose``.
    **kwargs
        Passed to ``tqdm`` (``desc``, ``total``, ``unit``...).

    Returns
    -------
    tqdm.tqdm

    Examples
    --------
    >>> from sklearn_mbdl._base import progress
    >>> sum(progress(range(3), verbose=0))
    3
    """
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not verbose, leave=False, **kwargs)
