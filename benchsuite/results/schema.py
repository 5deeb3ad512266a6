"""The record schema: what one line of ``records.jsonl`` holds, its version, and how older records are read.

A record is one JSON object per (job, evaluated split). :class:`Record` documents its fields with their types;
:func:`validate_record` checks a dict against it and names the offending key and the type it expected;
:func:`upgrade_record` reads a record of an earlier version as the current one. Keys the schema does not name
are allowed (a newer writer may add some); the keys it names must have its types.

Versions:

1. the records written before the schema existed: no ``schema_version`` key. A pipeline's validation
   choice was stored in its own way (``val_accuracy_by_k``, ``val_map50_by_C``, ``val_map50`` as a dict of
   setting strings, per-class tables), so one key could be a number in one record and an object in another.
2. ``schema_version`` is 2, and a validation choice is stored in one shape, :class:`Selection`, under
   ``fit_info["selection"]`` (one choice for the whole model) or ``fit_info["selection_per_class"][class]``
   (one choice per class), written by :meth:`benchsuite.api.Context.select` (through ``record_selection``).
   ``fit_info["val_map50"]`` is always a number: the validation mAP50 of the final model.

This module imports nothing else of the suite but its errors and the selection rule (:mod:`benchsuite.selection`,
which imports nothing of the suite), so that every layer may import it.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import types
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypedDict, Union, get_args, get_origin, get_type_hints, is_typeddict

from benchsuite.errors import BenchsuiteError
from benchsuite.selection import best_index

log = logging.getLogger(__name__)

#: the version of the records this suite writes
SCHEMA_VERSION = 2
#: the version of a record without a ``schema_version`` key (written before the schema existed)
UNVERSIONED = 1

#: a value of a selection's grid or choice: one JSON scalar, so that each becomes one typed table column
Scalar = str | int | float | bool | None


class RecordSchemaError(BenchsuiteError):
    """A record, or a part of one, does not have the schema's shape; the message names the key and the type."""


# ------------------------------------------------------------------------------------------------ the shapes


class Selection(TypedDict):
    """A validation choice: the candidates a pipeline scored on val and the one it kept.

    Attributes:
        metric: what was maximised on val, e.g. ``"val_accuracy"``, ``"val_map50"``, ``"val_ap50"`` (the
            AP50 of one class).
        grid: the candidate settings in the order they were scored, each ``{name: scalar}``; a staged search
            lists the candidates of every stage.
        scores: the metric of each candidate, same order (None where it was undefined, e.g. no val objects).
        chosen: the settings of the final model: a candidate's settings, plus any chosen inside it (a
            threshold picked for the best candidate).
        score: the metric of the chosen settings (None when undefined).
    """

    metric: str
    grid: list[dict[str, Scalar]]
    scores: list[float | None]
    chosen: dict[str, Scalar]
    score: float | None


class Shortcut(TypedDict):
    """Work a fit did less of than its profile asked (:meth:`benchsuite.api.Context.shortcut`)."""

    what: str
    asked: Any
    done: Any
    reason: str


class FitInfo(TypedDict, total=False):
    """``fit_info``: what the pipeline reported about its fit (:meth:`benchsuite.api.Context.record`).

    Free-form, except the keys named here, which have one meaning and one shape in every record.

    Attributes:
        selection: the pipeline's validation choice for the whole model (:class:`Selection`).
        selection_per_class: validation choices made per class, by class name.
        val_map50: the mAP50 of the final model on val (detectors that score it).
        trained_on: ``"train"`` or ``"train+val"`` (refit on train + val after the choice: val not scored).
        val_not_scored: why the val split has no record.
        shortcuts: see :class:`Shortcut`; also copied to the record's ``shortcuts``.
    """

    selection: Selection
    selection_per_class: dict[str, Selection]
    val_map50: float | None
    trained_on: Literal["train", "train+val"]
    val_not_scored: str
    shortcuts: list[Shortcut]


class PhaseConditions(TypedDict, total=False):
    """The conditions of one timed phase (:func:`benchsuite.measure.conditions.phase_conditions`)."""

    wall_s: float
    cpu_s: float
    threads: int
    cores: int
    others_cpu_cores: float | None
    run_delay_s: float | None
    wait_share: float | None
    load_start: float | None
    load_end: float | None
    contended: bool | None


class Timing(TypedDict, total=False):
    """``timing``: seconds, throughput and latency of the job, and the conditions they were taken under.

    Attributes:
        fit_s: seconds of the one ``fit`` call; ``fit_decode_s`` the image decoding inside it and
            ``fit_imports`` the packages it first imported (both on its clock, neither the method's work).
        predict_s, images, images_per_s, seconds_per_image: the timed prediction over the split.
        latency_ms_p50, latency_ms_p95, latency_ms_mean, latency_images: single-image latency after warm-up.
        fit, predict: each phase's :class:`PhaseConditions`; ``contended``: whether either was contended.
        method: how the times were taken (clock, synchronisation, batch size, ...).
        wall_s: the worker's seconds from start to end; ``shared_machine``: other jobs ran beside it.
    """

    fit_s: float | None
    fit_decode_s: float | None
    fit_imports: list[str]
    fit: PhaseConditions | None
    predict_s: float | None
    images: int
    images_per_s: float | None
    seconds_per_image: float | None
    predict: PhaseConditions | None
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    latency_ms_mean: float | None
    latency_images: int
    method: dict[str, Any]
    contended: bool | None
    shared_machine: bool
    wall_s: float | None


class Memory(TypedDict, total=False):
    """``memory``: peaks in MiB (the worker, its largest child, its process tree, the GPU, and the runner's own
    process while it scored the split: ``runner_peak_rss_mb``)."""

    peak_rss_mb: float | None
    peak_rss_children_mb: float | None
    peak_tree_rss_mb: float | None
    gpu_peak_mb: float | None
    runner_peak_rss_mb: float | None


class PipelineClass(TypedDict, total=False):
    """``pipeline_class``: the class that ran under the record's pipeline id: its module and class name (as the
    worker imported it) and the installed distribution that registered it, with its version."""

    module: str
    qualname: str
    distribution: str | None
    version: str | None


class Consumed(TypedDict, total=False):
    """``consumed[<producer id>]``: what the job took from the output of a pipeline its pipeline consumes
    (:attr:`benchsuite.api.Pipeline.consumes`; the proposal cache, :mod:`benchsuite.measure.cache_use`), over the whole
    job (``fit`` and detection alike).

    Attributes:
        producer_job: the run's job of that pipeline on the same data set, which finished before this job
            started; None when the run had none (this job computed what the cache lacked).
        cached_images: distinct images whose output came from the cache (written by another job or run).
        computed_images: distinct images whose output this job computed (and stored in the cache).
        read_s: wall seconds of the cache lookups and reads; compute_s: wall seconds of computing and storing
            what was missing (both inside the fit and detection clocks where they happened).
        declared: whether the pipeline declares the producer (false: it read that output undeclared).
    """

    producer_job: str | None
    cached_images: int
    computed_images: int
    read_s: float
    compute_s: float
    declared: bool


class Produced(TypedDict, total=False):
    """``produced``: what a producer's job (a proposer that other jobs of the run consume) put in the cache for
    them after its own work (:func:`benchsuite.proposal_cache.produce_for_consumers`), so that it is computed
    once instead of once per consumer.

    Attributes:
        consumer_jobs: the run's jobs that consume this job's output.
        proposer_key: the cache key of the proposer's parameters; a consumer whose proposer has others misses.
        images: images per split it proposed for (``train``, ``val``); left_images: those it left to the
            consumers because most of its time limit had passed.
        cached_images, computed_images, read_s, compute_s: as in :class:`Consumed`.
        error: why it could not (the consumers then computed their proposals themselves).
    """

    consumer_jobs: list[str]
    proposer_key: str
    images: dict[str, int]
    left_images: int
    cached_images: int
    computed_images: int
    read_s: float
    compute_s: float
    error: str


class StudyPoint(TypedDict, total=False):
    """``study``: the point of a study (``benchsuite study AXIS``, :mod:`benchsuite.studies`) a record scores.

    Attributes:
        axis: the axis (``"train-size"``, ``"resolution"``, ``"corruption"``).
        text, value, label, slug: the point's value as written, as a number or name, as the report names it,
            as data set and split names carry it (``"0.1"``, 0.1, ``"10%"``, ``"10pct"``).
        position: its place on the axis (the report's x); curve: the curve it belongs to ("" or a family).
        seed: the job's seed (the subset or noise it drew); base_dataset: the data set it was derived from;
            fingerprint: the derived data set's fingerprint (base, axis and points).
        work_floor: the run's ``--work-floor``; work: what the axis's work rule changed in the pipeline's
            parameters at this point (``{"rule": ..., "epochs": [profile's, this point's]}``), when anything.
    """

    axis: str
    text: str
    value: float | int | str
    label: str
    slug: str
    position: float
    curve: str
    seed: int
    base_dataset: str
    fingerprint: str
    work_floor: float | None
    work: dict[str, Any]


class _RecordKeys(TypedDict):
    schema_version: int
    run_id: str
    job_id: str
    task: str
    dataset: str
    split: str
    pipeline: str
    family: str
    status: Literal["ok", "failed"]
    metrics: dict[str, Any]
    timing: Timing
    memory: Memory
    params: dict[str, Any]
    fit_info: FitInfo
    seed: int
    device: str


class Record(_RecordKeys, total=False):
    """One record: one (job, evaluated split). The keys from ``schema_version`` to ``device`` must be present;
    the runner writes every other key below too, but older records may lack some.

    Attributes:
        schema_version: :data:`SCHEMA_VERSION` when written.
        run_id, job_id: the run and the job (one (task, data set, pipeline, seed)).
        task, dataset, split, pipeline, family, seed, device, profile: what ran, on what, how.
        status: ``"ok"`` or ``"failed"``; a failed record has ``failure`` (its kind) and ``error`` (one line).
        metrics: the task's metrics for the split (``accuracy``, ``map50``, ... and their ``*_ci95``).
        timing, memory: see :class:`Timing`, :class:`Memory`.
        params: the pipeline's constructor parameters; fit_info: see :class:`FitInfo`.
        shortcuts, shortened: work done short of the profile (not comparable when ``shortened``).
        consumed: for a pipeline that reads other pipelines' output from the cache, per producer id, the
            images read from the cache and those computed, and the seconds of each (:class:`Consumed`);
            None for the others.
        produced: for a producer's job, what it put in the cache for the run's jobs that consume it
            (:class:`Produced`); None for the others.
        dataset_fingerprint, split_fingerprint, data_origin, data_canonical: the data's identity.
        pretrained_reference, harness_floor: rows shown apart in reports.
        output: counts about the predictions (boxes clipped, proposals returned, ...).
        determinism: what the device promises about bit-identical results.
        artifacts: files of the job (predictions, confusion matrix, ...), relative to the run folder;
            log: the job's log file; started_at, finished_at: ISO times.
        node, executor: the host the job ran on, and what ran it (``{"name": "local" or "ray", ...}``).
        study: the study point the record scores (:class:`StudyPoint`); None outside a study.
        pipeline_class: the class that ran (:class:`PipelineClass`: module, class, distribution and version).
        leftover_processes: processes of the job still running after its worker had exited (the orphans of a worker
            that died before it could end them), ended by the runner.
        config_changed: for a record of a session resumed with ``--allow-changed``, what differed from the run's
            configuration (one line each); None otherwise.
    """

    dataset_fingerprint: str | None
    data_origin: str | None
    data_canonical: bool | None
    split_fingerprint: str | None
    pretrained_reference: bool
    harness_floor: bool
    failure: str | None
    error: str | None
    shortcuts: list[Shortcut]
    shortened: bool
    consumed: dict[str, Consumed] | None
    produced: Produced | None
    output: dict[str, Any]
    determinism: dict[str, Any] | None
    profile: str | None
    artifacts: dict[str, str]
    log: str | None
    started_at: str | None
    finished_at: str | None
    node: str | None
    executor: dict[str, Any] | None
    study: StudyPoint | None
    pipeline_class: PipelineClass | None
    leftover_processes: int | None
    config_changed: list[str] | None


# ------------------------------------------------------------------------------------------------ validation


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if tp is Any:
        return "any JSON value"
    if tp is type(None):
        return "null"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin is list:
        return f"a list of ({_type_name(get_args(tp)[0])})"
    if origin is dict:
        return f"an object of ({_type_name(get_args(tp)[1])})"
    if is_typeddict(tp):
        return f"an object ({tp.__name__})"
    return {bool: "bool", int: "int", float: "number", str: "string", dict: "an object", list: "a list"
            }.get(tp, getattr(tp, "__name__", str(tp)))


def _kind_matches(value: Any, tp: Any) -> bool:
    """Whether ``value`` is of ``tp``'s outer kind (its elements are checked apart)."""
    origin = get_origin(tp) or tp
    if tp is Any:
        return True
    if tp is type(None):
        return value is None
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in get_args(tp))
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if is_typeddict(tp) or origin is dict:
        return isinstance(value, dict)
    if origin is list:
        return isinstance(value, list)
    return isinstance(value, origin)


@functools.cache
def _hints(tp: type) -> dict[str, Any]:
    return get_type_hints(tp)


def _problems(value: Any, tp: Any, path: str) -> list[str]:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            if _kind_matches(value, arg):
                return _problems(value, arg, path)
        return [_wrong(value, tp, path)]
    if not _kind_matches(value, tp):
        return [_wrong(value, tp, path)]
    out: list[str] = []
    if is_typeddict(tp):
        hints = _hints(tp)
        for key in sorted(tp.__required_keys__):
            if key not in value:
                out.append(f"{_join(path, key)}: missing (expected {_type_name(hints[key])})")
        for key, sub in value.items():
            if key in hints:
                out.extend(_problems(sub, hints[key], _join(path, key)))
    elif origin is dict:
        item = get_args(tp)[1]
        for key, sub in value.items():
            if not isinstance(key, str):
                out.append(f"{_join(path, str(key))}: key {key!r} is not a string")
            out.extend(_problems(sub, item, _join(path, str(key))))
    elif origin is list:
        item = get_args(tp)[0]
        for i, sub in enumerate(value):
            out.extend(_problems(sub, item, f"{path}[{i}]"))
    return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _wrong(value: Any, tp: Any, path: str) -> str:
    items = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else None
    if items is not None and (len(items) > 8 or any(isinstance(v, (dict, list)) for v in items)):
        shown = f"of {len(items)} item(s)"  # never walk a large or deep container for a message
    else:
        shown = repr(value[:61] if isinstance(value, str) else value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{path or 'record'}: expected {_type_name(tp)}, got {type(value).__name__} {shown}"


def record_problems(record: Any) -> list[str]:
    """Every way ``record`` differs from :class:`Record`, one line each naming the key and the expected type
    (empty when it conforms)."""
    return _problems(record, Record, "")


def present_field_problems(record: dict[str, Any]) -> list[str]:
    """The problems of the keys ``record`` holds (a key the schema names but the record lacks is no problem: an
    older record may lack it), one line each naming the key and the expected type: what a reader checks before it
    uses a record it did not write itself."""
    hints = _hints(Record)
    out: list[str] = []
    for key, value in record.items():
        if not isinstance(key, str):
            out.append(f"key {key!r} is not a string")
        elif key in hints:
            out.extend(_problems(value, hints[key], key))
    return out


def shape_problems(value: Any, tp: Any, path: str = "") -> list[str]:
    """Every way ``value`` differs from the type ``tp`` (a TypedDict, a ``list[...]``, a union ...), one line each
    naming the key under ``path``: the check :func:`record_problems` makes, for other files' shapes."""
    return _problems(value, tp, path)


def validate_record(record: Any) -> Record:
    """``record`` itself when it conforms to :class:`Record`; else :class:`RecordSchemaError` naming every
    offending key and the type it expected."""
    problems = record_problems(record)
    if problems:
        raise RecordSchemaError(f"record does not match schema version {SCHEMA_VERSION}: " + "; ".join(problems))
    return record  # type: ignore[return-value]


def fit_info_problems(fit_info: Any) -> list[str]:
    """The problems of a ``fit_info`` block alone (what a pipeline reported), keys named from ``fit_info``."""
    return _problems(fit_info, FitInfo, "fit_info")


# ------------------------------------------------------------------------------------------------ selections


def _scalar(value: Any, where: str) -> Scalar:
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        value = value.item()  # numpy scalars
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise RecordSchemaError(f"{where}: expected a JSON scalar (string, number, bool or null), got "
                            f"{type(value).__name__} {value!r:.60}")


def _settings(settings: Any, where: str) -> dict[str, Scalar]:
    if not isinstance(settings, Mapping):
        raise RecordSchemaError(f"{where}: expected an object of settings {{name: value}}, got "
                                f"{type(settings).__name__}")
    return {str(k): _scalar(v, f"{where}.{k}") for k, v in settings.items()}


def _score(value: Any, where: str) -> float | None:
    if value is None:
        return None
    value = _scalar(value, where)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordSchemaError(f"{where}: expected a number or null, got {type(value).__name__} {value!r}")
    return float(value) if math.isfinite(value) else None


def make_selection(metric: str, grid: Iterable[Mapping[str, Any]], scores: Iterable[Any],
                   chosen: Mapping[str, Any], score: Any = None) -> Selection:
    """A checked :class:`Selection` (numpy scalars to Python, non-finite scores to None).

    ``score`` defaults to the score of the first candidate whose settings all agree with ``chosen``.
    """
    if not isinstance(metric, str) or not metric:
        raise RecordSchemaError(f"selection.metric: expected a non-empty string, got {metric!r}")
    grid_ = [_settings(g, f"selection.grid[{i}]") for i, g in enumerate(grid)]
    scores_ = [_score(s, f"selection.scores[{i}]") for i, s in enumerate(scores)]
    if len(grid_) != len(scores_):
        raise RecordSchemaError(f"selection: {len(grid_)} candidates in grid but {len(scores_)} scores")
    chosen_ = _settings(chosen, "selection.chosen")
    if score is None:
        score_ = next((s for g, s in zip(grid_, scores_) if all(chosen_.get(k) == v for k, v in g.items())), None)
    else:
        score_ = _score(score, "selection.score")
    return {"metric": metric, "grid": grid_, "scores": scores_, "chosen": chosen_, "score": score_}


def add_selection(fit_info: dict[str, Any], selection: Selection, for_class: str | None = None) -> None:
    """Store ``selection`` in ``fit_info`` (``selection``, or ``selection_per_class[for_class]``).

    A second selection of the same metric for the same place is a later stage of one search: its candidates
    are appended, its choice is laid over the earlier one and its score becomes the selection's score.
    """
    if for_class is None:
        old = fit_info.get("selection")
    else:
        old = (fit_info.get("selection_per_class") or {}).get(str(for_class))
    if isinstance(old, dict) and old.get("metric") == selection["metric"]:
        selection = {"metric": selection["metric"], "grid": [*old["grid"], *selection["grid"]],
                     "scores": [*old["scores"], *selection["scores"]],
                     "chosen": {**old["chosen"], **selection["chosen"]}, "score": selection["score"]}
    elif old is not None:
        raise RecordSchemaError(f"selection: already recorded with metric {old.get('metric')!r}, now "
                                f"{selection['metric']!r}; one selection per place (use for_class= for "
                                f"choices made per class)")
    if for_class is None:
        fit_info["selection"] = selection
    else:
        fit_info.setdefault("selection_per_class", {})[str(for_class)] = selection


# ------------------------------------------------------------------------------------------------ reading

#: version-1 tables of validation scores, by key: (metric, the name of the setting a plain key holds)
_LEGACY_TABLES = {
    "val_accuracy_by_k": ("val_accuracy", "k"),
    "val_accuracy_by_C": ("val_accuracy", "C"),
    "val_map50_by_C": ("val_map50", "C"),
    "val_map50_by_step_stride": ("val_map50", None),
    "val_ap50_by_setting": ("val_ap50", None),
}
#: version-1 short names in ``name=value`` keys, by the name version 2 uses
_LEGACY_NAMES = {"step": "pyramid_step", "codebook": "codebook_size", "power": "specificity_power",
                 "hit": "hit_threshold", "score": "score_mode", "missed": "stages_missed", "nms": "nms_iou"}
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _legacy_value(text: str) -> Scalar:
    text = text.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if _NUMBER.match(text):
        return float(text)
    return text


def _legacy_setting(key: str, name: str | None) -> dict[str, Scalar]:
    """``"step=1.2,stride=8"`` (name None) or ``"0.01"`` (name ``"C"``) as settings."""
    if name is not None:
        return {name: _legacy_value(key)}
    out: dict[str, Scalar] = {}
    for part in key.split(","):
        k, _, v = part.partition("=")
        out[_LEGACY_NAMES.get(k.strip(), k.strip())] = _legacy_value(v)
    return out


def _legacy_selection(metric: str, table: Mapping[str, Any], name: str | None) -> Selection:
    """A selection from a version-1 table ``{setting: score}``; the choice is the one the suite's rule keeps
    (:func:`benchsuite.selection.best_index`: the first best score)."""
    grid = [_legacy_setting(str(k), name) for k in table]
    scores = [_score(v, "legacy score") if isinstance(v, (int, float)) else None for v in table.values()]
    if not scores:
        return make_selection(metric, grid, scores, {}, None)
    best = best_index(scores)
    return make_selection(metric, grid, scores, grid[best], scores[best])


def _upgrade_fit_info_v1(info: dict[str, Any]) -> None:
    for key, (metric, name) in _LEGACY_TABLES.items():
        if isinstance(info.get(key), dict):
            add_selection(info, _legacy_selection(metric, info.pop(key), name))
    if isinstance(info.get("val_map50"), dict):  # ism, rcnn: the grid's scores under the final score's key
        table = info.pop("val_map50")
        if table:
            sel = _legacy_selection("val_map50", table, None)
            add_selection(info, sel)
            info["val_map50"] = sel["score"]
    for block, table_key, name in (("per_class", "val_ap50_by_C_nms", None),        # ss-hog-svm
                                   ("chosen_on_val", "val_ap50_grid", None)):      # viola-jones
        per_class = info.get(block)
        if not isinstance(per_class, dict):
            continue
        for cls, entry in per_class.items():
            if not (isinstance(entry, dict) and isinstance(entry.get(table_key), dict)):
                continue
            table = entry.pop(table_key)
            if table_key == "val_ap50_by_C_nms":  # {C: {nms: ap}}
                table = {f"C={c},nms_iou={t}": ap for c, row in table.items() if isinstance(row, dict)
                         for t, ap in row.items()}
            add_selection(info, _legacy_selection("val_ap50", table, name), for_class=str(cls))


def upgrade_record(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` as the current version would have written it (a copy when it changes; the same dict when
    it is current). A record without ``schema_version`` is version 1. A record of a newer version is returned
    as it is, with a warning."""
    version = record.get("schema_version", UNVERSIONED)
    if version == SCHEMA_VERSION:
        return record
    if not isinstance(version, int) or isinstance(version, bool) or version > SCHEMA_VERSION:
        log.warning("record %s/%s: schema_version %r is newer than this suite's %d; read as it is",
                    record.get("job_id"), record.get("split"), version, SCHEMA_VERSION)
        return record
    out = dict(record)
    if version == UNVERSIONED and isinstance(out.get("fit_info"), dict):
        info = out["fit_info"] = _deep_copy(out["fit_info"])
        try:
            _upgrade_fit_info_v1(info)
        except RecordSchemaError as exc:  # an odd table: keep the record readable, without the selection
            log.warning("record %s/%s: version-1 validation scores not converted (%s)", record.get("job_id"),
                        record.get("split"), exc)
    out["schema_version"] = SCHEMA_VERSION
    return out


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
