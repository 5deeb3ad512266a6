"""The axis contract and registry: what one study axis is, and how the suite finds the axes.

An axis is a class derived from :class:`Axis`, registered under its name in the ``benchsuite.axes`` entry-point
group (the suite's own ``train-size``, ``resolution`` and ``corruption`` in its ``pyproject.toml``, exactly as a
third party registers one)::

    [project.entry-points."benchsuite.axes"]
    my-axis = "mypkg.axes:MyAxis"

It says how its values are written (:meth:`Axis.points`, one :class:`Point` per value), how a point changes each
loaded split (:meth:`Axis.derive`), what a point does to a pipeline's training work (:meth:`Axis.work`; most axes:
nothing), which annotations it can derive (:attr:`Axis.supports`; a task needing others is refused before any job
starts) and whether it changes pixels in memory (:attr:`Axis.changes_pixels`: pipelines that read another
pipeline's cached output by image file, ``Pipeline.consumes``, are refused then). With :attr:`Axis.one_fit`, one
job per pipeline and seed fits once and scores every point, each a variant of the test split (``corruption``: the
models are trained on clean images once); otherwise every point is its own data set and its own jobs.

Nothing here names a task or a pipeline: a plugin pipeline takes part in any study without code of its own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from benchsuite.errors import ConfigError
from benchsuite.plugins import PluginGroup, PluginProblem

__all__ = ["AXES", "Axis", "Point", "StudyPlan", "axis_names", "get_axis", "scaled_epochs"]

ENTRY_POINT_GROUP = "benchsuite.axes"


@dataclass(frozen=True)
class Point:
    """One value of an axis.

    Attributes:
        axis: the axis's name (``"train-size"``).
        text: the value as written in a data set spec, canonical (``"0.1"``, ``"500"``, ``"16px"``,
            ``"gaussian-noise-3"``); :meth:`Axis.points` reads it back to this point.
        value: the value as a number or a name (0.1, 500, 0.5, 16, ``"gaussian-noise-3"``).
        label: how reports name it (``"10%"``, ``"500 images"``, ``"x0.5"``, ``"16 px"``, ``"gaussian noise 3"``).
        slug: file-name safe, for data set and split names (``"10pct"``, ``"n500"``, ``"x0.5"``, ``"16px"``).
        position: where it lies on the report's x axis (the fraction, the count, the factor, the severity).
        curve: the curve of the axis the point belongs to ("": the axis has one; ``corruption``: its family).
    """

    axis: str
    text: str
    value: float | int | str
    label: str
    slug: str
    position: float
    curve: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StudyPlan:
    """What a study run sweeps: the axis, its values as written (None: the axis's default for the profile) and the
    work floor of :func:`scaled_epochs` (``--work-floor``)."""

    axis: str
    values: str | None = None
    work_floor: float = 0.25

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Axis:
    """One study axis. Subclasses set the class attributes and implement :meth:`points` and :meth:`derive`.

    Attributes:
        name: its registered name (``"train-size"``); title: what its values measure, for the report's x axis.
        description: one sentence for ``benchsuite study --help`` and the report.
        changes: the splits a point changes (``("train",)``, ``("train", "val", "test")``, ``("test",)``).
        changes_pixels: a point changes image pixels in memory (resampled, corrupted).
        supports: the annotations of the data sets it can derive (a task whose ``needs`` are not all among them
            is refused before any job starts).
        one_fit: one job per pipeline and seed fits once and scores every point as a variant of the test split.
        seeded: a point's data depends on the job's seed (a random subset, random noise); otherwise every seed
            sees the same derived images.
        x_scale: ``"log"`` or ``"linear"``: the report's x axis and the crossover's interpolation.
        curve_noun: what one of its curves is, for the report (``"corruption"``), when it has several.
        defaults: the values a study uses when none are given, per profile (``{"quick": "1%,3%,..."}``); a profile
            it does not name uses ``defaults["quick"]``.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    changes: ClassVar[tuple[str, ...]] = ()
    changes_pixels: ClassVar[bool] = False
    supports: ClassVar[frozenset[str]] = frozenset()
    one_fit: ClassVar[bool] = False
    seeded: ClassVar[bool] = True
    x_scale: ClassVar[str] = "linear"
    curve_noun: ClassVar[str] = "curve"
    defaults: ClassVar[Mapping[str, str]] = {}

    def points(self, text: str) -> list[Point]:
        """The points ``text`` names (comma-separated values, the axis's syntax), sorted and without repeats; a
        malformed or out-of-range value is a :class:`~benchsuite.errors.ConfigError` naming it and the syntax."""
        raise NotImplementedError

    def default_values(self, profile: str) -> str:
        """The values a study of ``profile`` sweeps when none are given."""
        return str(self.defaults.get(profile) or self.defaults.get("quick") or "")

    def derive(self, data: Any, split: str, point: Point, seed: int) -> Any:
        """``data`` (one loaded split of the base data set: an ImageSet, a DetectionSet, ...) as the point sees it;
        the same object when the point does not change that split. Deterministic in ``(data, split, point,
        seed)``: the worker and the parent (which scores the predictions) derive the same images."""
        raise NotImplementedError

    def count(self, split: str, images: int, point: Point) -> int:
        """Images of ``split`` at ``point`` when the base split has ``images`` (before any profile cap)."""
        return images

    def work(self, params: dict[str, Any], point: Point, floor: float, train_images: int | None,
             constructor: Mapping[str, tuple[Any, Any]]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """A pipeline's constructor parameters at ``point`` and what changed (None: nothing). ``params`` are the
        profile's and ``--param``'s; ``constructor`` maps each constructor parameter to ``(annotation, default)``
        (:func:`benchsuite.params.constructor_parameters`); ``train_images`` is the size of the full training
        split under the profile's cap. Most axes leave the work as it is."""
        return params, None

    def format_position(self, x: float, points: list[Point]) -> str:
        """A place on the axis (a crossover between two points) as the report writes it, in the units of
        ``points`` (the study's)."""
        return f"{x:.3g}"

    def curve_order(self, curves: list[str]) -> list[str]:
        """The axis's curves in the report's order."""
        return sorted(curves)

    def curve_title(self, curve: str) -> str:
        """How the report names one of the axis's curves (``Point.curve``)."""
        return curve

    def describe(self, points: list[Point]) -> str:
        """One line for the report and ``run.json``: the axis and its points."""
        return f"{self.name}: {', '.join(p.label for p in points)}"


def scaled_epochs(params: dict[str, Any], share: float, floor: float, constructor: Mapping[str, tuple[Any, Any]]
                  ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The training-size axis's work rule: **epochs per point, with a floor on the training done**.

    A point that trains on ``share`` of the full training split keeps the pipeline's own passes over the data
    (its constructor parameter ``epochs``, as its profile or default sets it), so the training images it goes
    through (epochs x images, about its optimiser steps x batch size) shrink with the data; except that no point
    goes through fewer than ``floor`` of what the full split's training does: ``epochs`` becomes
    ``max(epochs, epochs * floor / share)``, rounded up to a whole number when the constructor takes an int.
    ``floor`` 0 is plain epochs per point; 1 is the same training at every point. (Optimiser steps follow only
    approximately: a pipeline that drops the ragged last batch of an epoch does fewer steps on a tiny set.)
    Pipelines without a numeric ``epochs`` (the classical ones; detectors sized by optimiser steps, ``iterations``)
    are left as they are: their recipe is their work. Returns the parameters and ``{"rule", "epochs": [the
    profile's, this point's]}``, or None when nothing changed.
    """
    annotation, default = constructor.get("epochs", (None, None))
    epochs = params.get("epochs", default)
    if isinstance(epochs, bool) or not isinstance(epochs, (int, float)) or epochs <= 0 or share >= 1 or floor <= 0:
        return params, None
    wanted = epochs * min(floor, 1.0) / share
    if wanted <= epochs:
        return params, None
    integer = annotation in (int, "int") or (isinstance(epochs, int) and annotation not in (float, "float"))
    new = math.ceil(wanted - 1e-9) if integer else round(wanted, 4)
    rule = (f"epochs per point, at least {floor:g} of the full split's training (epochs x images): epochs x "
            f"{new / epochs:.3g} at {share:.3g} of the data")
    return {**params, "epochs": new}, {"rule": rule, "epochs": [epochs, new]}


# ---------------------------------------------------------------------------------------------- registry


def _check(name: str, loaded: Any) -> Axis:
    axis = loaded() if isinstance(loaded, type) else loaded
    ref = f"{type(axis).__module__}:{type(axis).__qualname__}"
    if not isinstance(axis, Axis):
        raise PluginProblem(f"{ref} is not a study axis (derive it from benchsuite.studies.axes.Axis)")
    if axis.name != name:
        raise PluginProblem(f"entry point name {name!r} differs from {ref}.name {axis.name!r}")
    if axis.x_scale not in ("log", "linear"):
        raise PluginProblem(f"{ref}.x_scale is {axis.x_scale!r}; expected 'log' or 'linear'")
    if not axis.supports or not axis.changes:
        raise PluginProblem(f"{ref} must declare the annotations it supports and the splits it changes")
    return axis


#: the ``benchsuite.axes`` entry points, by name
AXES: PluginGroup[Axis] = PluginGroup(ENTRY_POINT_GROUP, "study axis", _check)


def get_axis(name: str) -> Axis:
    """The axis registered as ``name``; an unknown or broken one is a ConfigError naming the known axes."""
    entry = AXES.discover().get(name)
    if entry is None:
        raise ConfigError(f"unknown study axis {name!r}; known axes: {', '.join(AXES.names()) or 'none'} (the "
                          f"entry-point group {ENTRY_POINT_GROUP})")
    return AXES.get(name)


def axis_names() -> tuple[str, ...]:
    """The names of the working axes."""
    return AXES.names()


# ------------------------------------------------------------------------------------------ value syntax

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def split_values(text: str, axis: str) -> list[str]:
    """The comma-separated tokens of ``text`` (``+`` separates them too: the form a data set spec uses)."""
    tokens = [t.strip() for t in re.split(r"[,+]", str(text)) if t.strip()]
    if not tokens:
        raise ConfigError(f"{axis}: no value given; expected comma-separated values such as "
                          f"{get_axis(axis).default_values('quick') if axis in axis_names() else '...'}")
    return tokens


def number(token: str, axis: str, syntax: str) -> float:
    """``token`` as a finite number, else a ConfigError naming the axis and its syntax."""
    if not _NUMBER.match(token):
        raise ConfigError(f"{axis}: value {token!r} is not a number; expected {syntax}")
    value = float(token)
    if not math.isfinite(value):
        raise ConfigError(f"{axis}: value {token!r} is not finite; expected {syntax}")
    return value


def unique_sorted(points: list[Point]) -> list[Point]:
    """``points`` by (curve, position), each value once."""
    seen: dict[str, Point] = {}
    for p in points:
        seen.setdefault(p.text, p)
    return sorted(seen.values(), key=lambda p: (p.curve, p.position, p.text))
