"""The pipeline contract: what a plugin implements and what it receives.

In the spirit of scikit-learn's estimators: hyper-parameters are constructor arguments stored under the
same names, ``fit`` learns and leaves its state in attributes, prediction methods do not change state.

A pipeline class declares four things as class attributes:

``id``
    stable, lower-case, used in records and reports (``"nn-l1"``).
``task``
    the name of a registered task, the suite's own or a plugin's (:mod:`benchsuite.tasks.registry`); the task
    sets the base class and the methods to implement (:class:`Classifier`, :class:`Detector` and
    :class:`Proposer` set it for theirs).
``family``
    ``"classical"`` or ``"deep"``.
``devices``
    the devices it can use, a subset of ``("cpu", "cuda")``.

Images are always ``uint8`` arrays in HWC layout with RGB channel order. Boxes are ``float`` arrays of
shape ``(N, 4)`` in pixel coordinates ``x1, y1, x2, y2`` (x2 > x1, y2 > y1; a box covering the single
pixel at column 0 is ``0, 0, 1, 1``).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from benchsuite.data.detection import DetectionSample, DetectionSet
from benchsuite.data.images import ImageSet
from benchsuite.results.schema import add_selection, make_selection
from benchsuite.selection import Choice, choose

#: what a plugin imports: the contract (this module), what ``fit`` receives and what ``ctx.select`` returns
__all__ = ["Budget", "Choice", "Classifier", "ClassifierOutput", "Context", "DetectionSample", "DetectionSet",
           "Detections", "Detector", "ImageSet", "Pipeline", "Proposer", "batched", "check_pipeline_class"]

FAMILIES = ("classical", "deep")
DEVICES = ("cpu", "cuda")


def __getattr__(name: str) -> Any:
    if name == "TASKS":  # removed: the list of tasks is the task registry's, above this module
        raise AttributeError("benchsuite.api.TASKS was removed; the registered tasks are "
                             "benchsuite.tasks.registry.task_names()")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


T = TypeVar("T")


@dataclass(frozen=True)
class Budget:
    """How much work the profile allows a job: the pipeline sizes its training by it.

    ``epochs`` is a hint for iterative training (None: the pipeline's own default); the image caps
    have already been applied to the splits the pipeline receives and are here for information.
    ``extra`` holds free-form knobs a profile may set for plugins. ``time_limit_s`` is a safety net: a job
    past it fails; a pipeline never sizes its work by it. ``train_time_s`` is set only by the opt-in
    ``--time-budget`` mode: a pipeline that can train for less than its planned schedule may stop at that many
    seconds of training, and must then say so with :meth:`Context.shortcut` (such records are marked as not
    comparable). None (the default) means: do the profile's fixed work.
    """

    profile: str
    epochs: int | None = None
    max_train_images: int | None = None
    max_val_images: int | None = None
    max_test_images: int | None = None
    time_limit_s: float = 3600.0
    extra: Mapping[str, Any] = field(default_factory=dict)
    train_time_s: float | None = None


@dataclass(frozen=True)
class ErfRequest:
    """The effective-receptive-field measurement asked of a pipeline that declares ``erf_layer``
    (:mod:`benchsuite.erf`; the training engine carries it out).

    Attributes:
        layer: the layer whose centre unit is measured.
        data: the val split the probe images come from (an ImageSet's first ``count`` images, or crops around a
            DetectionSet's first ``count`` objects), or an ``(N, H, W, C)`` uint8 array.
        split: the split's name, for the record.
        count: probe images.
        size: the probe images' side in pixels (images resized, object crops made that size); None: as they are
            (equal-sized images only; object crops default to 128).
        scale: pixel values 0-255 are multiplied by this (``1 / 255`` for a network that takes 0-1 floats).
    """

    layer: str
    data: Any = None
    split: str = "val"
    count: int = 32
    size: int | None = None
    scale: float = 1.0


def _no_progress(iterable: Iterable[T], **_: Any) -> Iterable[T]:
    return iterable


@dataclass
class Context:
    """Everything the suite gives a pipeline at ``fit`` time, and nothing else.

    Attributes:
        device: ``"cpu"`` or ``"cuda"`` (already resolved from ``auto``).
        seed: the job's seed; pipelines seed every random choice from it.
        budget: the profile's budget for this job.
        cache_dir: a folder the pipeline may use to keep work between jobs (proposals, features).
        num_threads: CPU threads this job may use.
        progress: wraps an iterable in a progress bar: ``for x in ctx.progress(xs, desc="epoch")``.
        info: facts the pipeline reports about its fit (chosen hyper-parameters, validation scores);
            stored in the job's record under ``fit_info``. Use :meth:`record`.
        weights: a local state dict the user named (``--weights PATH``), or None.
        download: the user allowed downloads (``--download``): a pipeline may then fetch pretrained
            weights; without it nothing is downloaded at run time.
        job_dir: the job's own folder in the run (None outside a run, e.g. in ``benchsuite check``): evidence a
            pipeline measures while it fits (the ERF maps, :mod:`benchsuite.erf`) is saved there for the report.
        erf: the ERF measurement the framework asks of the pipeline's training (:class:`ErfRequest`, from its
            ``erf_layer``), or None; :class:`benchsuite.training.Trainer` carries it out.
    """

    device: str = "cpu"
    seed: int = 0
    budget: Budget = field(default_factory=lambda: Budget(profile="custom"))
    cache_dir: Path = field(default_factory=lambda: Path(".benchsuite-cache"))
    num_threads: int = 1
    progress: Callable[..., Iterable[Any]] = _no_progress
    info: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None
    download: bool = False
    job_dir: Path | None = None
    erf: ErfRequest | None = None

    def record(self, **facts: Any) -> None:
        """Report facts about the fit (JSON-serialisable values) for the job's record."""
        self.info.update(facts)

    def shortcut(self, what: str, asked: Any, done: Any, reason: str) -> None:
        """Report that the fit did less than asked (fewer epochs or steps, a smaller grid, fewer negatives, a
        capped proposal count, a failed sub-step). The record lists every shortcut and the report names the
        shortened records beside their rows and in the headline: e.g.
        ``ctx.shortcut("epochs", 9, 1, "--time-budget 60 s")``."""
        entry = {"what": str(what), "asked": asked, "done": done, "reason": str(reason)}
        self.info.setdefault("shortcuts", []).append(entry)

    def record_selection(self, *, metric: str, grid: Iterable[Mapping[str, Any]], scores: Iterable[float | None],
                         chosen: Mapping[str, Any], score: float | None = None, for_class: str | None = None
                         ) -> None:
        """Report a choice made on val, in the one shape every record uses for it
        (:class:`benchsuite.results.schema.Selection`): ``fit_info["selection"]``, or
        ``fit_info["selection_per_class"][for_class]`` for a choice made per class.

        ``metric`` names what was maximised (``"val_accuracy"``, ``"val_map50"``, ``"val_ap50"``); ``grid``
        lists the candidate settings (``{name: number, string or bool}``) in the order they were scored and
        ``scores`` their metric (None or NaN where undefined); ``chosen`` holds the settings kept (a candidate's,
        plus any chosen inside it) and ``score`` their metric (default: the score of the first candidate that
        agrees with ``chosen``). A staged search calls it once per stage with the same metric: the candidates
        add up, the later choice wins. E.g.
        ``ctx.record_selection(metric="val_accuracy", grid=[{"k": 1}, {"k": 3}], scores=[0.31, 0.34],
        chosen={"k": 3})``. Raises :class:`benchsuite.results.schema.RecordSchemaError` on another shape.
        Built-in pipelines choose with :meth:`select`, which calls this; a plugin that chooses by a rule of its
        own may call it directly.
        """
        add_selection(self.info, make_selection(metric, grid, scores, chosen, score), for_class)

    def select(self, grid: Sequence[Mapping[str, Any]], score: Callable[[dict[str, Any]], Any], *, metric: str,
               for_class: str | None = None, record: bool = True,
               prefer_first: tuple[str, Callable[[dict[str, Any], dict[str, Any]], bool]] | None = None) -> Choice:
        """Choose settings on val: score every candidate of ``grid`` (with a progress bar and a log line each),
        keep one by the suite's one rule, record the choice with :meth:`record_selection` and return it.

        The rule (:mod:`benchsuite.selection`): the highest score wins, a tie goes to the candidate listed first,
        an undefined score (None, NaN) ranks last. ``score(settings)`` returns a score, ``(score, payload)`` (the
        payload, e.g. the fitted model, comes back with the kept candidate) or the :class:`Choice` of an inner
        ``select(..., record=False)`` made for this candidate (its settings join the candidate's). A staged search
        calls ``select`` once per stage with the same ``metric``; ``for_class`` records a choice made per class.
        ``prefer_first=(key, is_clear)`` keeps the best candidate with the first candidate's ``key`` unless
        ``is_clear(best, that one)`` (a costly alternative must win clearly on a small val set).
        E.g. ``ctx.select([{"k": k} for k in (1, 3, 5)], lambda s: val_accuracy(s["k"]),
        metric="val_accuracy").settings["k"]``.

        Returns:
            :class:`Choice`: ``settings``, ``score``, ``payload``, ``index``, and every candidate's ``grid`` and
            ``scores``.
        """
        choice = choose(grid, score, metric=metric, progress=self.progress if record else None, verbose=record,
                        prefer_first=prefer_first)
        if record:
            self.record_selection(metric=metric, grid=choice.grid, scores=choice.scores, chosen=choice.settings,
                                  score=choice.score, for_class=for_class)
        return choice

    def rng(self, offset: int = 0) -> np.random.Generator:
        """A numpy generator seeded from the job's seed (``offset`` gives independent streams)."""
        return np.random.default_rng([self.seed, offset])

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger("benchsuite.pipeline")


class Pipeline:
    """Base of every pipeline. Subclasses set the class attributes and implement the task's methods."""

    id: ClassVar[str] = ""
    task: ClassVar[str] = ""
    family: ClassVar[str] = ""
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    #: True for pretrained models that the suite does not train (shown as references in reports).
    pretrained_reference: ClassVar[bool] = False
    #: True for the ``null-*`` references that do no work (constant output): their fit and predict figures are
    #: the harness's own cost per job, shown as the floor in reports and never as a headline row.
    harness_floor: ClassVar[bool] = False
    description: ClassVar[str] = ""
    #: constructor parameters per profile (``{"smoke": {...}, "quick": {...}, "full": {...}}``) that size the
    #: pipeline's work in that profile; the runner passes them, and a user's ``--param`` wins over them
    profile_params: ClassVar[dict[str, dict[str, Any]]] = {}
    #: a study the pipeline belongs to: the report gives the records of every pipeline with the same
    #: ``report_group`` a table of their own under that title, with ``report_note`` (e.g. a published figure to
    #: compare with) below it. Recorded in the record's ``fit_info`` (``report_group``, ``report_note``).
    report_group: ClassVar[str] = ""
    report_note: ClassVar[str] = ""
    #: ids of the pipelines whose output this one reads (through a shared cache, such as the selective-search
    #: proposals that ``rcnn`` classifies, :mod:`benchsuite.proposal_cache`). When a run holds a job of such a
    #: pipeline on the same data set, the runner finishes it before this pipeline's job starts; otherwise this
    #: pipeline computes what the cache lacks itself. Its record's ``consumed`` block counts the images read
    #: from the cache and those computed, and the seconds spent on each.
    consumes: ClassVar[tuple[str, ...]] = ()
    #: how far the task's primary metric was seen to move between CPU types for the same work, data and seed (an
    #: absolute difference, e.g. 0.003 accuracy; a measured figure, not a bound): 0.0 where the arithmetic is the same
    #: on every x86-64 CPU (integer work), None where it was not measured. Kernels picked by instruction set (MKL,
    #: oneDNN, torch's vectorised reductions) sum in another order on another CPU. In the record's
    #: ``determinism.cpu_drift``; ``benchsuite compare`` of runs on two CPU types says which changes lie within it.
    cpu_drift: ClassVar[float | None] = None
    #: a layer of the network the pipeline trains (a module name, or its unique last part, e.g. ``"stages.2"``)
    #: whose effective receptive field the training engine measures at initialisation and after training, on val
    #: images fed to the trained model as float ``(N, C, H, W)`` pixels (:mod:`benchsuite.erf`; saved as ``erf.npz``
    #: in the job folder and ``fit_info["erf"]``). Empty: none (or a probe the pipeline passes to the trainer).
    erf_layer: ClassVar[str] = ""
    #: how the probe images for ``erf_layer`` are made (:class:`ErfRequest`'s ``count``, ``size``, ``scale``): e.g.
    #: ``{"size": 256, "scale": 1 / 255}`` for a detector taking 0-1 floats, probed on 256-px crops of val objects.
    erf_input: ClassVar[Mapping[str, Any]] = {}

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, read back from the attributes of the same names."""
        return {name: getattr(self, name) for name in self._param_names() if hasattr(self, name)}

    def set_params(self, **params: Any) -> Pipeline:
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"{self.id}: unknown parameter {name!r}; valid: {sorted(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


@dataclass
class ClassifierOutput:
    """What ``Classifier.predict`` may return instead of a bare label array.

    Attributes:
        labels: ``(N,)`` integer class indices.
        scores: optional ``(N, C)`` class scores (higher is more likely).
        variants: optional extra label arrays under a name, each ``(N,)``; scored beside the main
            labels (``nn-l1`` reports ``k=1`` this way next to the k chosen on val).
    """

    labels: np.ndarray
    scores: np.ndarray | None = None
    variants: dict[str, np.ndarray] = field(default_factory=dict)


class Classifier(Pipeline):
    """Image classification: ``fit(train, val, ctx)`` then ``predict(images) -> labels``."""

    task: ClassVar[str] = "classification"
    #: how many images the runner hands to one ``predict`` call when scoring a split.
    predict_batch_size: ClassVar[int] = 1024

    def fit(self, train: ImageSet, val: ImageSet, ctx: Context) -> Classifier:
        raise NotImplementedError

    def predict(self, images: np.ndarray) -> np.ndarray | ClassifierOutput:
        """Labels for ``images``, ``(N, H, W, 3)`` uint8 RGB: ``(N,)`` ints or a ClassifierOutput."""
        raise NotImplementedError


@dataclass
class Detections:
    """Detections in one image: ``boxes`` (N, 4) x1y1x2y2 pixels, ``scores`` (N,), ``labels`` (N,)."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.scores)


class Detector(Pipeline):
    """Object detection: ``fit(train, val, ctx)`` then ``detect(image) -> Detections``."""

    task: ClassVar[str] = "detection"
    #: how many images the runner hands to one ``detect_batch`` call when scoring a split.
    detect_batch_size: ClassVar[int] = 1

    def fit(self, train: DetectionSet, val: DetectionSet, ctx: Context) -> Detector:
        raise NotImplementedError

    def detect(self, image: np.ndarray) -> Detections | tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Detections in one ``(H, W, 3)`` uint8 RGB image; labels index the data set's classes."""
        raise NotImplementedError

    def detect_batch(self, images: list[np.ndarray]) -> list[Detections | tuple]:
        """Detections for several images; override for batched inference."""
        return [self.detect(im) for im in images]


class Proposer(Pipeline):
    """Region proposals: ``propose(image) -> boxes`` ranked best first. ``fit`` is optional."""

    task: ClassVar[str] = "proposals"
    #: how many images the runner hands to one ``propose_batch`` call when scoring a split.
    propose_batch_size: ClassVar[int] = 1

    def fit(self, train: DetectionSet, val: DetectionSet, ctx: Context) -> Proposer:
        return self

    def propose(self, image: np.ndarray) -> np.ndarray:
        """``(N, 4)`` x1y1x2y2 pixel boxes for one ``(H, W, 3)`` uint8 RGB image, best first."""
        raise NotImplementedError

    def propose_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Proposals for several images; override to spread them over processes or a GPU."""
        return [self.propose(im) for im in images]


def check_pipeline_class(cls: Any) -> list[str]:
    """Problems with the declarations of a pipeline class as a list of messages (empty when they conform): a
    :class:`Pipeline` subclass with an ``id``, a ``task`` name, a ``family`` and ``devices``.

    Whether ``task`` is a registered task and the class meets its contract (its pipeline base class, its methods)
    is the registry's question, above this module: :func:`benchsuite.registry.pipeline_problems` asks both, and
    so does ``benchsuite check`` (:mod:`benchsuite.testing`, check ``declarations``).
    """
    problems: list[str] = []
    if not (isinstance(cls, type) and issubclass(cls, Pipeline)):
        return [f"{cls!r} is not a subclass of benchsuite.api.Pipeline"]
    if not cls.id or cls.id != cls.id.strip() or " " in cls.id:
        problems.append(f"{cls.__name__}.id must be a non-empty id without spaces, got {cls.id!r}")
    if not isinstance(cls.task, str) or not cls.task:
        problems.append(f"{cls.__name__}.task must name a registered task, got {cls.task!r}")
    if cls.family not in FAMILIES:
        problems.append(f"{cls.__name__}.family must be one of {FAMILIES}, got {cls.family!r}")
    bad = [d for d in cls.devices if d not in DEVICES]
    if not cls.devices or bad:
        problems.append(f"{cls.__name__}.devices must be a non-empty subset of {DEVICES}, got {cls.devices!r}")
    for attr in ("report_group", "report_note", "erf_layer"):
        if not isinstance(getattr(cls, attr), str):
            problems.append(f"{cls.__name__}.{attr} must be a string, got {getattr(cls, attr)!r}")
    bad_erf = set(cls.erf_input) - {"count", "size", "scale"} if isinstance(cls.erf_input, Mapping) else None
    if bad_erf is None or bad_erf:
        problems.append(f"{cls.__name__}.erf_input must be a mapping of count, size and scale, got {cls.erf_input!r}")
    consumes = cls.consumes
    if not isinstance(consumes, tuple) or not all(isinstance(c, str) and c.strip() for c in consumes):
        problems.append(f"{cls.__name__}.consumes must be a tuple of pipeline ids, got {consumes!r}")
    elif cls.id in consumes:
        problems.append(f"{cls.__name__}.consumes names the pipeline itself ({cls.id!r})")
    return problems


def batched(items: np.ndarray | list[T], size: int) -> Iterator[np.ndarray | list[T]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
