"""``benchsuite data check SPEC``: what a data set holds and what is wrong with it, in seconds, without training.

:func:`check_dataset` opens the spec through its format (for inspection: a format that can collects every
problem instead of stopping at the first, :attr:`benchsuite.data.datasets.OpenRequest.inspect`) and summarises it
from the annotations and image headers only (no pixel is decoded, except for formats that hold their pixels in
memory anyway, as CIFAR-10's batches):

- the format, name, origin, folder, annotations provided, the fingerprint and each split's fingerprint;
- split sizes; per class the images that hold it and its objects (or its images, for image labels);
- image sizes (min, median, max width and height; how many distinct sizes; the size a pipeline sees, if set);
- box sizes: COCO's small / medium / large counts (area under 32², under 96², above), width, height and aspect
  ratio (width / height) quantiles, difficult (crowd) objects and background images;
- the data set's notes and every problem with its file.

A problem that would stop a run (an *error*: the spec does not open) makes :attr:`DataCheck.ok` False, which the
command turns into exit status 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite.data.datasets import OpenRequest, format_of_spec
from benchsuite.data.problems import Problem, Problems
from benchsuite.errors import DataError

SMALL_AREA = 32**2  # COCO's object size bounds, pixels squared
MEDIUM_AREA = 96**2
SPLITS = ("train", "val", "test")


@dataclass
class DataCheck:
    """The outcome of :func:`check_dataset`: the summary's sections as text lines, and the problems."""

    spec: str
    format: str
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    failed: str = ""  # the one-line error that stopped the data set from opening, if any
    uncounted: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """False when a run on the data set would stop (it does not open, or an error was found)."""
        return not self.failed and not any(p.severity == "error" for p in self.problems)

    def lines(self) -> list[str]:
        out = [f"data set {self.spec} (format {self.format})"]
        for title, body in self.sections:
            out.append(f"{title}:")
            out += [f"  {line}" for line in body]
        errors = [p for p in self.problems if p.severity == "error"]
        warnings = [p for p in self.problems if p.severity == "warning"]
        if self.failed:
            out.append(f"cannot be opened: {self.failed}")
        for what, items in (("error", errors), ("warning", warnings)):
            more = self.uncounted.get(what, 0)
            if items:
                out.append(f"{len(items) + more} {what}(s):")
                out += [f"  {what}: {p.line()}" for p in items]
                if more:
                    out.append(f"  ... and {more} more not listed")
        verdict = "OK: a run can use it" if self.ok else "NOT USABLE: a run would stop on the error(s) above"
        out.append(f"{verdict} ({len(errors)} error(s), {len(warnings)} warning(s))")
        return out


def _quantiles(values: np.ndarray, digits: int = 0) -> str:
    if not len(values):
        return "none"
    q = np.quantile(values, [0, 0.1, 0.5, 0.9, 1.0])
    fmt = (lambda v: f"{v:.{digits}f}") if digits else (lambda v: f"{round(float(v))}")
    return "min {} / p10 {} / median {} / p90 {} / max {}".format(*(fmt(v) for v in q))


def _size_lines(sizes: np.ndarray) -> list[str]:
    """``sizes``: ``(N, 2)`` (width, height)."""
    if not len(sizes):
        return ["no images"]
    distinct = len({(int(w), int(h)) for w, h in sizes})
    return [f"width  {_quantiles(sizes[:, 0])}", f"height {_quantiles(sizes[:, 1])}",
            f"{distinct} distinct size(s)" + (f": all {int(sizes[0, 0])}x{int(sizes[0, 1])}" if distinct == 1 else "")]


def _detection_sections(splits: dict[str, Any], classes: list[str]) -> list[tuple[str, list[str]]]:
    samples = [s for data in splits.values() for s in data]
    boxes = np.concatenate([s.boxes for s in samples]).reshape(-1, 4) if samples else np.zeros((0, 4))
    labels = np.concatenate([s.labels for s in samples]) if samples else np.zeros(0, np.int64)
    difficult = np.concatenate([s.difficult for s in samples]) if samples else np.zeros(0, bool)
    k = len(classes)
    rows = []
    width = max([len(c) for c in classes] + [5])
    rows.append(f"{'class':<{width}}  " + "  ".join(f"{s + ' img/obj':>16}" for s in splits) + "  difficult")
    for c, name in enumerate(classes):
        cells = []
        for data in splits.values():
            n_img = sum(1 for s in data if (s.labels == c).any())
            n_obj = sum(int((s.labels == c).sum()) for s in data)
            cells.append(f"{n_img:>7} / {n_obj:<6}")
        rows.append(f"{name:<{width}}  " + "  ".join(f"{x:>16}" for x in cells) +
                    f"  {int(difficult[labels == c].sum())}")
    background = {s: sum(1 for x in data if not len(x)) for s, data in splits.items()}
    rows.append("background images (no object): " + ", ".join(f"{s} {n}" for s, n in background.items()))
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    area = w * h
    box_lines = [f"{len(boxes)} objects ({int(difficult.sum())} difficult or crowd) in {k} class(es)",
                 f"COCO sizes: small (area < 32²) {int((area < SMALL_AREA).sum())}, medium "
                 f"{int(((area >= SMALL_AREA) & (area < MEDIUM_AREA)).sum())}, large (≥ 96²) "
                 f"{int((area >= MEDIUM_AREA).sum())}",
                 f"width  {_quantiles(w)} px", f"height {_quantiles(h)} px",
                 f"aspect (w/h) {_quantiles(w / np.maximum(h, 1e-9), 2)}"]
    sizes = np.array([(s.width, s.height) for s in samples], np.int64).reshape(-1, 2)
    return [("classes (images / objects per split)", rows), ("image sizes", _size_lines(sizes)),
            ("box sizes", box_lines)]


def _label_sections(labels: dict[str, np.ndarray], sizes: np.ndarray, classes: list[str], seen_size: Any
                    ) -> list[tuple[str, list[str]]]:
    width = max([len(c) for c in classes] + [5])
    rows = [f"{'class':<{width}}  " + "  ".join(f"{s:>7}" for s in labels)]
    for c, name in enumerate(classes):
        rows.append(f"{name:<{width}}  " + "  ".join(f"{int((v == c).sum()):>7}" for v in labels.values()))
    counts = np.bincount(np.concatenate(list(labels.values())), minlength=len(classes)) if labels else []
    if len(counts) and counts.min() > 0:
        rows.append(f"imbalance: the largest class has {counts.max() / counts.min():.1f}x the images of the smallest")
    size_lines = _size_lines(sizes)
    if seen_size:
        size_lines.append(f"pipelines see every image at {seen_size[0]}x{seen_size[1]}")
    return [("classes (images per split)", rows), ("image sizes", size_lines)]


def check_dataset(spec: str, data_root: Path, cache_dir: Path) -> DataCheck:
    """Open ``spec`` for inspection and summarise it (see the module docstring)."""
    fmt = format_of_spec(spec)
    result = DataCheck(spec, fmt.prefix)
    try:
        ds = fmt(OpenRequest(spec, Path(data_root), Path(cache_dir), inspect=True))
    except DataError as exc:
        result.failed = str(exc)
        return result
    problems: Problems | None = getattr(ds, "problems", None)
    if isinstance(problems, Problems):
        result.problems = list(problems.items)
        result.uncounted = dict(problems.uncounted)
    info = ds.info
    splits = [s for s in SPLITS if s in info.split_counts]
    result.sections.append(("data set", [
        f"name {info.name}, {info.origin}, {info.description}",
        f"folder {info.root}",
        f"annotations: {', '.join(info.annotations)}",
        f"fingerprint {info.fingerprint}; splits " + ", ".join(f"{s} {info.split_fingerprints[s]}" for s in splits),
        "split sizes: " + ", ".join(f"{s} {info.split_counts[s]}" for s in splits),
        *(f"{k}: {v}" for k, v in info.options.items()),
    ]))
    if not splits:
        return result
    summary = getattr(ds, "split_summary", None)
    if callable(summary):  # image labels without decoding the pixels
        parts = {s: summary(s) for s in splits}
        sizes = np.concatenate([p[1] for p in parts.values()])
        result.sections += _label_sections({s: p[0] for s, p in parts.items()}, sizes, info.classes,
                                           info.options.get("image_size"))
    else:
        loaded = {s: ds.load(s) for s in splits}
        first = next(iter(loaded.values()))
        if hasattr(first, "samples") and hasattr(first, "all_objects"):
            result.sections += _detection_sections(loaded, info.classes)
        elif hasattr(first, "labels") and hasattr(first, "images"):
            sizes = np.concatenate([np.tile([d.images.shape[2], d.images.shape[1]], (len(d), 1))
                                    for d in loaded.values()])
            result.sections += _label_sections({s: d.labels for s, d in loaded.items()}, sizes, info.classes, None)
    if info.notes:
        result.sections.append(("notes", list(info.notes)))
    return result
