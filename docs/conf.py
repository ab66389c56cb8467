"""Sphinx configuration of the sklearn-mbdl documentation.

Build with ``python -m sphinx -W --keep-going -b html docs docs/_build/html``
from the repository root. Nothing is downloaded at build time.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the package, when it is not installed
os.environ.setdefault("MPLBACKEND", "Agg")

import sklearn_mbdl  # noqa: E402

# -- project ------------------------------------------------------------------
project = "sklearn-mbdl"
author = "sklearn-mbdl developers"
copyright = "sklearn-mbdl developers"
release = sklearn_mbdl.__version__
version = ".".join(release.split(".")[:2])

# -- extensions ---------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
default_role = "literal"

# -- autodoc / autosummary ----------------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"
# A method without a docstring (LISTA.forward) is not given its base
# class's (torch.nn.Module.forward).
autodoc_inherit_docstrings = False

# -- numpydoc -----------------------------------------------------------------
# Methods are listed by the autosummary class template, not by numpydoc.
numpydoc_show_class_members = False
numpydoc_attributes_as_param_list = True
# Validate the package's docstrings: each failed check is a build warning
# (an error with -W). The checks are those that catch wrong documentation
# (sections that do not parse, parameters missing or not in the signature),
# not style preferences.
numpydoc_validation_checks = {
    "GL06",  # unknown section
    "GL07",  # sections in the wrong order
    "PR01",  # parameter not documented
    "PR02",  # documented parameter not in the signature
    "PR03",  # parameters in the wrong order
    "PR10",  # missing space before the colon
    "YD01",  # no Yields section in a generator
}
# A docstring may defer its parameters to a sibling function (``fista``
# says "Same problem and parameters as :func:`ista`").
numpydoc_validation_overrides = {"PR01": [r"Same problem and parameters as"]}
# Inherited scikit-learn methods are validated by scikit-learn.
numpydoc_validation_exclude = {
    r"\.get_params$",
    r"\.set_params$",
    r"\.fit_transform$",
    r"\.set_output$",
    r"\.get_feature_names_out$",
    r"\.get_metadata_routing$",
    r"\.set_\w+_request$",
}

# -- sphinx-gallery -----------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "doc_module": ("sklearn_mbdl",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"sklearn_mbdl": None},
    # the examples run side by side, one process per core (at most 4); each
    # sets one torch thread through OMP_NUM_THREADS (see .ci/run)
    "parallel": max(1, min(4, len(os.sched_getaffinity(0))
                           if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)),
}

# -- HTML ---------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-mbdl {release}"
html_static_path = []
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": True,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"install": [], "index": []}
