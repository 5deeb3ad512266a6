"""A job's Python warnings (issue 27): scikit-learn's ConvergenceWarning, raised once per k-means run, is logged
once with its count and listed in the record's ``fit_info.warnings``, not printed raw into the run's console."""

from __future__ import annotations

import logging
import warnings

from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

from benchsuite.runner.worker import warnings_once


def test_each_distinct_warning_is_logged_once_and_recorded(caplog, capsys):
    info: dict = {}
    points = [[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]]
    with caplog.at_level(logging.WARNING, logger="benchsuite.worker"), warnings_once(info):
        for _ in range(3):  # three distinct points asked of two: sklearn warns on every fit
            KMeans(n_clusters=3, n_init=1, random_state=0).fit(points)
        warnings.warn("something else", RuntimeWarning, stacklevel=1)
    assert [(w["category"], w["count"]) for w in info["warnings"]] == [("ConvergenceWarning", 3),
                                                                          ("RuntimeWarning", 1)]
    lines = [r.getMessage() for r in caplog.records if "ConvergenceWarning" in r.getMessage()]
    assert len(lines) == 1 and "3 time(s)" in lines[0]
    assert "ConvergenceWarning" not in capsys.readouterr().err  # not printed raw
    assert issubclass(ConvergenceWarning, Warning)
