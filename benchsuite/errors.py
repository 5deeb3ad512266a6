"""Errors that reach the user as one clear line.

Everything the suite raises because of the user's input (a missing file, an unknown id, a bad option)
is a :class:`BenchsuiteError`; the command line prints its message and exits with status 2, without a
traceback. Anything else is a bug or a pipeline's own failure.
"""

from __future__ import annotations


class BenchsuiteError(Exception):
    """A problem with the user's input, reported as one line that names the file or value."""


class DataError(BenchsuiteError):
    """A data set is missing, truncated or not in the expected format."""


class ConfigError(BenchsuiteError):
    """An unknown pipeline, profile, task, device or option value."""


class OutputValidationError(BenchsuiteError):
    """A pipeline returned predictions of the wrong shape, type or range."""


class EmptyModelError(RuntimeError):
    """Training produced a model that cannot detect or classify anything (no cascade stage, no support
    vectors, no codebook, no negatives to learn from). The job fails with this message; a model that
    learned nothing is never recorded as ok. The message names the pipeline's cause in one line."""


class TrainingDivergedError(BenchsuiteError):
    """Training went numerically wrong: a non-finite loss, or gradients that stayed non-finite (past what
    float16 loss scaling recovers from). The job fails with one line naming the pipeline, the optimiser step and
    the loss (:mod:`benchsuite.training`); a model trained on NaN is never recorded as ok."""
