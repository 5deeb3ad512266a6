"""The template's pipelines pass the suite's conformance checks (benchsuite.testing)."""

from benchsuite_template.classifier import ColourHistogramKNN
from benchsuite_template.detector import TemplateMatcher

from benchsuite.testing import parametrize_with_checks


@parametrize_with_checks([ColourHistogramKNN, TemplateMatcher])
def test_conformance(pipeline, check):
    check(pipeline)
