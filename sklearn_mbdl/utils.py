"""Helpers for users of the toolkit."""

__all__ = ["expected_failed_checks"]

# fit takes high-resolution images, transform takes bursts (n_frames frames of
# ceil(n / scale) pixels for 1-D rows): every check that transforms the array
# it fitted (or compares n_features_in_ with it) cannot pass; the remaining
# checks, input validation included, pass.
_BURST = ("transform takes bursts of n_frames low-resolution frames, not the "
          "high-resolution images fit takes")
_BURST_CHECKS = (
    "check_fit_score_takes_y", "check_n_features_in_after_fitting",
    "check_estimators_dtypes", "check_dtype_object", "check_pipeline_consistency",
    "check_estimators_pickle", "check_f_contiguous_array_estimator",
    "check_transformer_data_not_an_array", "check_transformer_general",
    "check_transformer_preserve_dtypes", "check_methods_sample_order_invariance",
    "check_methods_subset_invariance", "check_dict_unchanged", "check_fit_idempotent",
)

#: class name -> {check name: the reason it is expected to fail}
_EXPECTED_FAILED_CHECKS = {
    "BurstSuperResolver": {name: _BURST for name in _BURST_CHECKS},
}


def expected_failed_checks(estimator):
    """The scikit-learn checks an estimator of the toolkit is expected to fail.

    Pass the result to :func:`sklearn.utils.estimator_checks.check_estimator`
    or :func:`~sklearn.utils.estimator_checks.parametrize_with_checks`, and
    every estimator of the toolkit passes the checks as a user runs them.
    Only :class:`~sklearn_mbdl.BurstSuperResolver` has entries: its ``fit``
    takes high-resolution images and its ``transform`` takes bursts of
    low-resolution frames, so the checks that transform the array they
    fitted cannot pass. Every entry gives its reason.

    Parameters
    ----------
    estimator : estimator instance or class
        An estimator of sklearn-mbdl (any other gets an empty dict).

    Returns
    -------
    dict of str to str
        Check name -> the reason it is expected to fail (a new dict).

    Examples
    --------
    >>> from sklearn.utils.estimator_checks import check_estimator
    >>> from sklearn_mbdl import BurstSuperResolver, SparseCoder
    >>> from sklearn_mbdl.utils import expected_failed_checks
    >>> len(expected_failed_checks(BurstSuperResolver()))
    14
    >>> expected_failed_checks(SparseCoder())
    {}
    >>> est = SparseCoder()
    >>> _ = check_estimator(est, expected_failed_checks=expected_failed_checks(est))
    """
    cls = estimator if isinstance(estimator, type) else type(estimator)
    if not cls.__module__.startswith("sklearn_mbdl"):
        return {}
    return dict(_EXPECTED_FAILED_CHECKS.get(cls.__name__, {}))
