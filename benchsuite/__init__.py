"""benchsuite: classical versus deep computer vision, benchmarked on the same data splits."""

from benchsuite.api import (
    Budget,
    Choice,
    Classifier,
    ClassifierOutput,
    Context,
    Detections,
    DetectionSample,
    DetectionSet,
    Detector,
    ImageSet,
    Pipeline,
    Proposer,
)

__version__ = "0.1.0"
__all__ = ["Budget", "Choice", "Classifier", "ClassifierOutput", "Context", "DetectionSample", "DetectionSet",
           "Detections", "Detector", "ImageSet", "Pipeline", "Proposer", "__version__"]
