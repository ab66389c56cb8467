"""The toolkit as a user meets it: the README's commands, pandas output and
feature names, metadata routing, check_estimator for users."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _readme_commands():
    """The one-line commands of the README's bash blocks."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines()
            if line.strip()]


def test_readme_has_the_two_commands_and_ci_runs_the_test_one():
    commands = _readme_commands()
    tour = [c for c in commands if c.endswith("python -m sklearn_mbdl tour")]
    tests = [c for c in commands if c.endswith("python -m pytest")]
    assert len(tour) == 1 and len(tests) == 1
    for command in (tour[0], tests[0]):
        # each works pasted alone: it makes the environment and installs
        assert command.startswith("python3 -m venv .venv && . .venv/bin/activate")
        assert 'pip install -e ".[test]"' in command
    ci = (ROOT / ".ci" / "run")
    if ci.exists():  # (absent from an installed copy)
        lines = [line.strip() for line in ci.read_text().splitlines()]
        assert tests[0] in lines


# ----- pandas output and feature names ----------------------------------------

import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from sklearn_mbdl import (  # noqa: E402
    BurstSuperResolver,
    DCEAEstimator,
    DetNetClassifier,
    ExoplanetSeparator,
    LISTATransformer,
    PnPRestorer,
    SparseCoder,
)
from sklearn_mbdl.datasets import (  # noqa: E402
    extract_patches,
    load_images,
    make_adi_cube,
    make_mimo,
    make_poisson_images,
    make_sparse_coding,
)


def _signals():
    X, _, D = make_sparse_coding(60, 8, 12, 2, random_state=0)
    return X, D


def _images():
    return extract_patches(load_images("train"), 6, 16, random_state=0)


def _case(name):
    """(unfitted transformer, fit input, transform input, 2-D columns)."""
    if name in ("SparseCoder", "LISTATransformer"):
        X, D = _signals()
        est = (SparseCoder(D, alpha=0.1) if name == "SparseCoder" else
               LISTATransformer(D, n_layers=2, alpha=0.1, max_epochs=1, random_state=0))
        return est, X, X, 12
    if name == "PnPRestorer":
        images = _images()
        est = PnPRestorer(denoiser="tv", image_shape=(16, 16), noise_level=0.05)
        return est, images.reshape(6, -1), images.reshape(6, -1), 256
    if name == "BurstSuperResolver":
        images = _images()
        est = BurstSuperResolver(2, 3, n_iter=1, max_epochs=1, prior="tv",
                                 image_shape=(16, 16), random_state=0)
        bursts = est.fit(images).simulate(images).reshape(6, -1)
        return est, images.reshape(6, -1), bursts, 256
    if name == "DCEAEstimator":
        noisy, _ = make_poisson_images(4, patch_size=16, peak=2, random_state=0)
        est = DCEAEstimator(n_kernels=2, kernel_size=3, stride=2, n_layers=1,
                            image_shape=(16, 16), max_epochs=1, random_state=0)
        return est, noisy.reshape(4, -1), noisy.reshape(4, -1), 256
    cube, angles, _, psf = make_adi_cube(8, 24, n_planets=0, random_state=0)
    est = ExoplanetSeparator(psf, image_shape=(24, 24), max_epochs=1, random_state=0)
    return est, cube.reshape(8, -1), cube.reshape(8, -1), 24 * 24


TRANSFORMERS = ["SparseCoder", "LISTATransformer", "PnPRestorer",
                "BurstSuperResolver", "DCEAEstimator", "ExoplanetSeparator"]


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_feature_names_and_pandas_output(name):
    pd = pytest.importorskip("pandas")
    est, X_fit, X_new, n_out = _case(name)
    fit_params = {}
    if name == "ExoplanetSeparator":
        fit_params["angles"] = np.linspace(0, 40, len(X_fit))
    est.fit(X_fit, **fit_params)
    names = est.get_feature_names_out()
    assert len(names) == n_out and len(set(names)) == n_out
    plain = est.transform(X_new, **fit_params)
    assert plain.shape == (len(X_new), n_out)
    out = est.set_output(transform="pandas").transform(X_new, **fit_params)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(names)
    np.testing.assert_allclose(out.to_numpy(), plain, rtol=1e-6)


_NO_WARNING = """
import warnings
import numpy as np, pandas as pd, torch
torch.set_num_threads(1)
from sklearn_mbdl import SparseCoder, LISTATransformer, DetNetClassifier
from sklearn_mbdl.datasets import make_sparse_coding, make_mimo
X, _, D = make_sparse_coding(60, 8, 12, 2, random_state=0)
Xm, ym, H = make_mimo(200, 2, 4, random_state=0)
warnings.filterwarnings("error", message=".*not writable.*")
df = pd.DataFrame(X)
SparseCoder(D, alpha=0.1).fit(df).transform(df)
LISTATransformer(D, n_layers=2, alpha=0.1, max_epochs=1).fit(df).transform(df)
dm = pd.DataFrame(Xm)
DetNetClassifier(channel=H[0], n_layers=2, max_epochs=1).fit(dm, ym).predict(dm)
print("no warning")
"""


def test_dataframe_input_gives_no_torch_warning():
    """pandas (copy-on-write) hands out read-only arrays; torch warns once per
    process when it wraps one, so this runs in a fresh interpreter."""
    pytest.importorskip("pandas")
    result = subprocess.run([sys.executable, "-c", _NO_WARNING], capture_output=True,
                            text=True, cwd=ROOT, timeout=300)
    assert "no warning" in result.stdout, result.stderr[-2000:]


# ----- metadata routing -------------------------------------------------------

import sklearn  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402


def _mimo():
    return make_mimo(300, 2, 4, snr_db=12, random_state=0)


def _detnet():
    return DetNetClassifier(n_layers=2, max_epochs=1, augmentation=0, random_state=0)


def test_search_without_routing_raises_naming_the_fix():
    """Without routing, the search would pass channels to fit only and score
    NaN on every split: the fit refuses, and the search raises."""
    X, y, H = _mimo()
    search = GridSearchCV(_detnet(), {"residual": [0.5, 0.9]}, cv=2)
    with pytest.raises(ValueError, match=r"enable_metadata_routing=True"):
        search.fit(X, y, channels=H)
    # a direct fit with channels needs no routing
    assert _detnet().fit(X, y, channels=H).score(X, y, channels=H) > 0.5


def test_predict_without_channels_names_routing():
    X, y, H = _mimo()
    det = _detnet().fit(X, y, channels=H)
    with pytest.raises(ValueError, match=r"enable_metadata_routing=True"):
        det.score(X, y)


def test_search_and_pipeline_with_routing():
    X, y, H = _mimo()
    with sklearn.config_context(enable_metadata_routing=True):
        det = _detnet().set_fit_request(channels=True).set_score_request(
            channels=True)
        search = GridSearchCV(det, {"residual": [0.5, 0.9]}, cv=2).fit(X, y, channels=H)
        assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
        assert search.best_score_ > 0.5
        det = _detnet().set_fit_request(channels=True).set_predict_request(channels=True)
        pipe = make_pipeline(det).fit(X, y, channels=H)
        assert pipe.predict(X, channels=H).shape == y.shape


def test_exoplanet_angles_routed_through_a_pipeline():
    cube, angles, _, psf = make_adi_cube(8, 24, n_planets=0, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        sep = ExoplanetSeparator(psf, max_epochs=1, random_state=0)
        sep.set_fit_request(angles=True).set_transform_request(angles=True)
        pipe = make_pipeline(sep).fit(cube, angles=angles)
        residuals = pipe.transform(cube, angles=angles)
    assert residuals.shape == cube.shape


# ----- check_estimator for users ----------------------------------------------

from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

from sklearn_mbdl import MIMODetector  # noqa: E402
from sklearn_mbdl.utils import expected_failed_checks  # noqa: E402

ALL = [SparseCoder, LISTATransformer, PnPRestorer, DCEAEstimator, MIMODetector,
       DetNetClassifier, ExoplanetSeparator, BurstSuperResolver]


@pytest.mark.parametrize("cls", ALL)
def test_expected_failed_checks_public(cls):
    expected = expected_failed_checks(cls())
    assert expected == expected_failed_checks(cls)
    assert all(name.startswith("check_") and reason for name, reason in expected.items())
    assert len(expected) == (14 if cls is BurstSuperResolver else 0)
    expected["x"] = "y"  # a copy: the toolkit's list is not changed
    assert "x" not in expected_failed_checks(cls)


def test_check_estimator_as_a_user_runs_it():
    """The burst estimator, the one with expected failures, passes
    check_estimator given the public list (the other seven have none;
    test_sklearn_compat runs all eight)."""
    est = BurstSuperResolver(n_iter=1, max_epochs=1)
    check_estimator(est, expected_failed_checks=expected_failed_checks(est))
    with pytest.raises(Exception):
        check_estimator(est)  # without the list, a structural check fails


# ----- progress -----------------------------------------------------------------


def test_verbose_fit_labels_its_tables_and_shows_progress(capsys):
    X, D = _signals()
    LISTATransformer(D, n_layers=2, alpha=0.1, max_epochs=2, verbose=1,
                     random_state=0).fit(X)
    captured = capsys.readouterr()
    assert "LISTATransformer: training the LISTA, up to 2 epochs" in captured.out
    assert "train_loss" in captured.out          # skorch's epoch table
    assert "it/s" in captured.err or "s/it" in captured.err  # the progress bar
    cube, angles, _, psf = make_adi_cube(8, 24, n_planets=0, random_state=0)
    ExoplanetSeparator(psf, max_epochs=1, verbose=1, random_state=0).fit(
        cube, angles=angles)
    out = capsys.readouterr().out
    for fold in range(4):
        assert f"network {fold + 1} of 4 (trained on quadrant {fold}" in out


def test_long_model_based_solvers_show_progress(capsys):
    from sklearn_mbdl.operators import GaussianBlur

    X, y, H = _mimo()
    det = MIMODetector("ml", verbose=1).fit(X, y, channels=H)
    quiet = MIMODetector("ml").fit(X, y, channels=H).predict(X, channels=H)
    capsys.readouterr()
    np.testing.assert_array_equal(det.predict(X, channels=H), quiet)
    assert "sphere decoding" in capsys.readouterr().err
    images = _images()
    pnp = PnPRestorer(GaussianBlur(1.0, 7), denoiser="tv", n_iter=3, verbose=1)
    pnp.fit(images).transform(pnp.simulate(images))
    assert "PnPRestorer: ADMM on 6 images" in capsys.readouterr().err


def test_burst_warns_on_images_far_outside_unit_range():
    images = _images()
    with pytest.warns(UserWarning, match="divide by 255"):
        est = BurstSuperResolver(2, 3, n_iter=1, max_epochs=1, prior="tv",
                                 random_state=0).fit(255 * images)
    with pytest.warns(UserWarning, match="bursts"):
        est.transform(est.simulate(255 * images))


def test_add_a_method_page_runs():
    """The "add a method" page's code is a working estimator on the template:
    run its blocks in order (they assert that the learned steps beat
    Landweber's and keep the dtype)."""
    import re
    from pathlib import Path

    page = (Path(__file__).parents[1] / "docs" / "add_a_method.rst").read_text()
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", page)
    assert len(blocks) >= 4
    code = "\n".join("\n".join(line[4:] for line in block.splitlines())
                     for block in blocks)
    namespace = {"__name__": "add_a_method"}
    exec(compile(code, "docs/add_a_method.rst", "exec"), namespace)
    estimator = namespace["learned"]
    assert isinstance(estimator, namespace["UnrolledLandweber"])
    from sklearn.utils.estimator_checks import check_param_validation

    check_param_validation("UnrolledLandweber", estimator)
