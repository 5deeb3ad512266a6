"""Run profiles: how much data and compute each job gets.

``smoke``
    synthetic data only, a few hundred images, tiny budgets: every pipeline end to end in minutes.
    What the integration tests run.
``quick``
    the default: real data when present, the full test sets, budgets sized so each task finishes in
    about a quarter of an hour on 2 CPU cores.
``full``
    full training schedules; a GPU is recommended for the deep pipelines.

A profile sets a :class:`TaskBudget` per task and, per pipeline id, constructor parameters that size
the built-in pipelines. Plugins read the generic budget from ``ctx.budget``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchsuite.api import Budget
from benchsuite.errors import ConfigError

# torchvision detectors (pipelines/deep/torchvision_detectors.py) on 2 CPU cores: small images, fewer
# Faster R-CNN proposals and sampled regions (the box head and RoIAlign dominate its CPU cost)
_RCNN_CPU = {"rpn_pre_nms_top_n_train": 600, "rpn_post_nms_top_n_train": 300, "rpn_pre_nms_top_n_test": 300,
             "rpn_post_nms_top_n_test": 100, "box_batch_size_per_image": 64, "representation_size": 256}
#: smoke proposer parameters of selective-search (and of ss-hog-svm's proposer, to share the cache)
_SS_SMOKE: dict[str, Any] = {"preset": "fast", "ks": (100,), "max_side": 200}

_TORCHVISION_SMOKE: dict[str, dict[str, Any]] = {
    "faster-rcnn-mbv3-fpn": {"min_size": 160, "max_size": 256, "epochs": 3, "batch_size": 4, "warmup": 5,
                             "model_options": _RCNN_CPU},
    "faster-rcnn-r50-fpn": {"min_size": 128, "max_size": 192, "epochs": 1, "batch_size": 4, "warmup": 2,
                            "model_options": _RCNN_CPU},
    "retinanet-r50-fpn": {"min_size": 128, "max_size": 192, "epochs": 1, "batch_size": 4, "warmup": 2},
    "ssdlite-mbv3": {"min_size": 192, "epochs": 3, "batch_size": 4, "warmup": 5},
}
# quick: every torchvision detector trains a fixed number of optimiser steps (the same work on every machine and
# under any load), sized so that the whole Penn-Fudan detection + proposals task (every built-in pipeline) stays
# within 30 minutes on an idle 2-core machine; the MobileNet Faster R-CNN gets the largest share, the ResNet-50
# ones a token schedule (about 2 s a step on 2 cores)
_TORCHVISION_QUICK: dict[str, dict[str, Any]] = {
    "faster-rcnn-mbv3-fpn": {"min_size": 256, "max_size": 416, "iterations": 400, "batch_size": 4, "lr": 0.01,
                             "warmup": 40, "model_options": _RCNN_CPU},
    "ssdlite-mbv3": {"min_size": 256, "iterations": 300, "batch_size": 8, "lr": 0.05, "warmup": 20},
    "faster-rcnn-r50-fpn": {"min_size": 256, "max_size": 416, "iterations": 60, "batch_size": 4, "lr": 0.01,
                            "warmup": 10, "model_options": _RCNN_CPU},
    "retinanet-r50-fpn": {"min_size": 256, "max_size": 416, "iterations": 60, "batch_size": 4, "lr": 0.01,
                          "warmup": 10},
}

# the fusion study (pipelines/deep/fusion.py): the three variants get the very same parameters, so that they
# differ in their neck only; a from-scratch ResNet-18 Faster R-CNN, sized for 2 CPU cores
_FUSION_IDS = ("fusion-a-stages", "fusion-b-deepest", "fusion-c-fpn")
_FUSION_CPU = {"out_channels": 64, "representation_size": 256, "rpn_pre_nms_top_n_train": 1000,
               "rpn_post_nms_top_n_train": 500, "rpn_pre_nms_top_n_test": 500, "rpn_post_nms_top_n_test": 200,
               "box_batch_size_per_image": 128}
_FUSION_SMOKE = {"min_size": 160, "max_size": 256, "epochs": 2, "batch_size": 4, "lr": 0.02, "warmup": 3,
                 "model_options": _FUSION_CPU}
# quick: a fixed number of steps, the same for the three variants, so that they differ in their neck only; sized
# with the other detectors into the 30-minute detection task on 2 CPU cores (a study at this size compares the
# necks early in training; the full profile trains them properly)
_FUSION_QUICK = {"min_size": 256, "max_size": 416, "iterations": 150, "batch_size": 4, "lr": 0.02, "warmup": 15,
                 "model_options": _FUSION_CPU}


# quick classification: cnn and cnn-fusion train the same fixed schedule (9 epochs), sized so that the whole
# classification task (nn-l1, hog-svm and both CNNs) stays within 15 minutes on an idle 2-core machine
_CNN_QUICK = {"epochs": 9}


@dataclass(frozen=True)
class TaskBudget:
    max_train_images: int | None = None
    max_val_images: int | None = None
    max_test_images: int | None = None
    epochs: int | None = None
    time_limit_s: float = 3600.0


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    synthetic_only: bool
    budgets: dict[str, TaskBudget]
    pipeline_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    latency_images: int = 50  # single-image calls timed for the latency percentiles
    latency_warmup: int = 3

    def budget(self, task: str) -> Budget:
        b = self.budgets.get(task, TaskBudget())
        return Budget(profile=self.name, epochs=b.epochs, max_train_images=b.max_train_images,
                      max_val_images=b.max_val_images, max_test_images=b.max_test_images,
                      time_limit_s=b.time_limit_s)

    def params_for(self, pipeline_id: str) -> dict[str, Any]:
        return dict(self.pipeline_params.get(pipeline_id, {}))


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="synthetic data, a few hundred images, tiny budgets (minutes for everything)",
        synthetic_only=True,
        budgets={
            "classification": TaskBudget(600, 200, 300, epochs=2, time_limit_s=300),
            "detection": TaskBudget(24, 8, 16, epochs=1, time_limit_s=420),
            "proposals": TaskBudget(24, 8, 16, epochs=1, time_limit_s=300),
        },
        pipeline_params={
            "nn-l1": {"k_values": (1, 3)},
            "hog-svm": {"c_values": (0.1, 1.0)},
            **_TORCHVISION_SMOKE,
            "cnn": {"epochs": 8, "widths": (16, 32, 64), "batch_size": 64},
            "cnn-fusion": {"epochs": 8, "widths": (16, 32, 64), "batch_size": 64},  # the same budget as cnn
            **dict.fromkeys(_FUSION_IDS, _FUSION_SMOKE),
            "ism": {"codebook_sizes": (150,), "bandwidths": (0.1,), "specificity_powers": (3.0,), "max_side": None,
                    "max_upscale": 2.0},  # tiny objects: 2x, not 3x (under half the pixels; val 0.92 vs 0.96)
            "hog-svm-det": {"base_size": 48, "c_values": (0.1,), "steps": (1.2,), "negatives_per_image": 10,
                            "mining_rounds": 1, "hard_per_image": 20, "max_upscale": 1.5, "mining_step": 1.3,
                            "nms_thresholds": (0.3,), "measure_speed": False},
            # selective search on images shrunk to 200 px, one scale: the proposals task and ss-hog-svm share
            # these proposals through the cache (the same proposer parameters)
            "selective-search": _SS_SMOKE,
            "opencv-selective-search": {"mode": "single"},
            "ss-hog-svm": {"proposer_params": _SS_SMOKE, "train_proposals": 300, "test_proposals": 300,
                           "negatives_per_image": 20, "hard_per_image": 20, "c_values": (0.03,),
                           "nms_values": (0.3,)},
            "viola-jones": {"max_stages": 6, "max_features": 1000, "jitter": 1, "negatives_per_stage": 300,
                            "val_negatives_per_stage": 150, "max_stumps_per_stage": 15, "stride": 4,
                            "pyramid_step": 1.5, "max_upscale": 1.0, "stages_missed_values": (0, 1),
                            "nms_iou_values": (0.3,), "score_modes": ("last",)},
            "rcnn": {"proposer_params": _SS_SMOKE, "iterations": 40, "batch_size": 64, "widths": (16, 32, 64),
                     "max_train_proposals": 300, "max_test_proposals": 150, "positives_per_image": 32,
                     "background_per_image": 48, "nms_ious": (0.3,)},
        },
        latency_images=10,
        latency_warmup=2,
    ),
    "quick": Profile(
        name="quick",
        description="real data when present, full test sets, about 15 minutes per task on 2 CPU cores",
        synthetic_only=False,
        budgets={
            # the time limit is a safety net against a runaway job, generous enough for a busy machine: the
            # work is fixed by the pipelines' parameters, never by the clock
            "classification": TaskBudget(epochs=None, time_limit_s=7200),
            "detection": TaskBudget(epochs=None, time_limit_s=7200),
            "proposals": TaskBudget(epochs=None, time_limit_s=7200),
        },
        pipeline_params={**_TORCHVISION_QUICK, **dict.fromkeys(_FUSION_IDS, _FUSION_QUICK),
                         **dict.fromkeys(("cnn", "cnn-fusion"), _CNN_QUICK)},
        # 25 single-image calls: selective search takes over a second an image, and the latency percentiles
        # of every detection and proposal job are part of the 30-minute task
        latency_images=25,
        latency_warmup=3,
    ),
    "full": Profile(
        name="full",
        description="full training schedules (GPU recommended for the deep pipelines)",
        synthetic_only=False,
        budgets={
            "classification": TaskBudget(time_limit_s=24 * 3600),
            "detection": TaskBudget(time_limit_s=24 * 3600),
            "proposals": TaskBudget(time_limit_s=24 * 3600),
        },
        pipeline_params={
            "cnn": {"epochs": 40, "widths": (64, 128, 256)},
            "rcnn": {"iterations": 5000, "max_train_proposals": 2000, "max_test_proposals": 2000, "crop_size": 96,
                     "context": 6, "positives_per_image": 64, "background_per_image": 192},
            "cnn-fusion": {"epochs": 40, "widths": (64, 128, 256)},
            "hog-svm-det": {"max_negatives": 10000, "tune_images": 500},  # 20 VOC classes: bounded memory
            "viola-jones": {"max_stages": 16, "max_features": 16000, "negatives_per_stage": 4000,
                            "val_negatives_per_stage": 2000, "max_stumps_per_stage": 100, "pyramid_step": 1.1},
        },
        latency_images=100,
        latency_warmup=5,
    ),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown profile {name!r}; expected one of: {', '.join(PROFILES)}") from None


def pipeline_params(cls: type, profile: str) -> dict[str, Any]:
    """The constructor parameters that size pipeline class ``cls`` in ``profile`` (a copy): the class's own
    ``profile_params[profile]`` (see :class:`benchsuite.api.Pipeline`). A user's ``--param`` wins over them."""
    declared = getattr(cls, "profile_params", None) or {}
    own = declared.get(profile, {}) if isinstance(declared, dict) else {}
    legacy = PROFILES[profile].params_for(getattr(cls, "id", "")) if profile in PROFILES else {}
    return {**legacy, **dict(own)}
