"""benchsuite: classical versus deep computer vision, benchmarked on the same data splits."""

from benchsuite.api import (
    Budget,
    Classifier,
    ClassifierOutput,
    Context,
    Detections,
    Detector,
    Pipeline,
    Proposer,
)

__version__ = "0.1.0"
__all__ = ["Budget", "Classifier", "ClassifierOutput", "Context", "Detections", "Detector", "Pipeline",
           "Proposer", "__version__"]
