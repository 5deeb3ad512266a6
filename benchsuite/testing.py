"""Conformance checks for pipeline classes: a plugin author's test kit (a stable API).

In the spirit of scikit-learn's ``check_estimator``: :func:`check_pipeline` runs one pipeline class on tiny
synthetic data of its task, in this process, in seconds, and returns one :class:`CheckResult` per named
check, each failure with a message that says what to change. What is task-specific comes from the pipeline's
registered task, a plugin's as well as the suite's own: its tiny data (:meth:`benchsuite.tasks.base.Task.check_data`)
and how its pipelines are called and their outputs validated (:attr:`benchsuite.tasks.base.Task.checks`). The
checks:

``declarations``
    ``id``, ``task`` (a registered task), ``family``, ``devices``, the task's base class and methods
    (:func:`benchsuite.registry.pipeline_problems`).
``profile_params``
    ``profile_params`` (if declared) maps profile names to constructor parameters of the class.
``init_signature``
    every hyper-parameter is a named constructor argument (no ``*args``/``**kwargs``).
``constructs``
    the class can be built with the parameters the checks use.
``params_stored``
    ``__init__`` stores every argument, unchanged, under its own name (``self.k = k``): that is what
    :meth:`~benchsuite.api.Pipeline.get_params` reads, and what a job's record lists under ``params``.
``params_round_trip``
    ``get_params`` returns every constructor argument, ``set_params`` sets them and returns the pipeline,
    and ``cls(**p.get_params())`` builds an equal pipeline.
``fit_returns_self``
    ``fit`` runs on the tiny training data and returns the pipeline itself.
``fit_info_json``
    what the pipeline put into ``ctx.info`` (``ctx.record``) is JSON-serialisable, and the keys the record
    schema fixes (``selection``, ``val_map50``, ``trained_on``, ...) have its shape.
``outputs_valid``
    predictions pass the runner's own validation (container types, shapes, dtypes, finite scores,
    labels in range, boxes with x2 > x1 and y2 > y1).
``predict_keeps_state``
    prediction does not change the fitted state (public attributes; ``_private`` ones may hold caches).
``empty_input``
    no images in, no predictions out (an empty batch).
``single_image``
    one image in, one valid prediction out.
``grey_images``
    grey images (RGB arrays whose three channels are equal) give valid predictions.
``same_seed_same_output``
    a second fit with the same seed on the same data predicts the same outputs.

Use it from pytest with :func:`parametrize_with_checks`::

    from benchsuite.testing import parametrize_with_checks
    from mypkg.majority import Majority

    @parametrize_with_checks([Majority])
    def test_conformance(pipeline, check):
        check(pipeline)

or from the command line: ``benchsuite check mypkg.majority:Majority`` (or an installed pipeline's id).
"""

from __future__ import annotations

import atexit
import hashlib
import inspect
import json
import logging
import random
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite.api import Budget, Context, Pipeline
from benchsuite.errors import OutputValidationError
from benchsuite.params import constructor_parameters
from benchsuite.profiles import PROFILES, get_profile, pipeline_params
from benchsuite.registry import pipeline_problems
from benchsuite.results.schema import fit_info_problems
from benchsuite.tasks.checks import CheckAdapter
from benchsuite.tasks.registry import get_task

log = logging.getLogger(__name__)

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"

#: every check, in the order they run
CHECKS: tuple[str, ...] = (
    "declarations", "profile_params", "init_signature", "constructs", "params_stored", "params_round_trip",
    "fit_returns_self", "fit_info_json", "outputs_valid", "predict_keeps_state", "empty_input", "single_image",
    "grey_images", "same_seed_same_output",
)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one named check: ``status`` is ``"passed"``, ``"failed"`` or ``"skipped"``."""

    name: str
    status: str
    message: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    @property
    def failed(self) -> bool:
        return self.status == FAILED

    def line(self) -> str:
        """One line for a terminal: ``PASS name (0.1 s)`` or ``FAIL name: what to change``."""
        word = {PASSED: "PASS", FAILED: "FAIL", SKIPPED: "SKIP"}[self.status]
        text = f"{word}  {self.name}"
        if self.message:
            text += f": {self.message}"
        return text + (f"  ({self.seconds:.1f} s)" if self.seconds >= 0.05 else "")


class CheckFailed(AssertionError):
    """A check's condition does not hold; the message says what to change."""


# ---------------------------------------------------------------------------------------------- tiny data
@dataclass
class TinyData:
    """Tiny synthetic data of one task (:meth:`benchsuite.tasks.base.Task.check_data`): ``train``/``val``/``test``
    splits (ImageSet, DetectionSet, ...), the test images as the task's prediction method takes them (``images``:
    ``(N, H, W, 3)`` for classification, a list of ``(H, W, 3)`` otherwise), the smoke budget capped to the splits
    and the scratch folder that holds their files, if any."""

    task: str
    train: Any
    val: Any
    test: Any
    images: Any
    num_classes: int
    budget: Budget
    folder: Path | None = None


_DATA: dict[str, TinyData] = {}
_FOLDERS: list[Path] = []


def _scratch_folder(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    if not _FOLDERS:
        atexit.register(lambda: [shutil.rmtree(f, ignore_errors=True) for f in _FOLDERS])
    _FOLDERS.append(folder)
    return folder


def tiny_data(task: str) -> TinyData:
    """Tiny synthetic data for the registered task ``task`` (built once per process, in well under a second).

    An unknown task is a :class:`~benchsuite.errors.ConfigError`; a task that declares no check data raises
    NotImplementedError naming what it lacks."""
    if task not in _DATA:
        spec = get_task(task)
        data = spec.check_data(_scratch_folder("benchsuite-testing-"))
        budget = replace(get_profile("smoke").budget(task), max_train_images=len(data.train),
                         max_val_images=len(data.val), max_test_images=len(data.test))
        _DATA[task] = TinyData(task, data.train, data.val, data.test, data.inputs, data.num_classes, budget,
                               data.folder)
    return _DATA[task]


def _grey(images: Any) -> Any:
    """The same images in grey, as RGB arrays whose three channels are equal."""
    def one(im: np.ndarray) -> np.ndarray:
        y = np.rint(im[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
        return np.repeat(np.clip(y, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)

    return one(images) if isinstance(images, np.ndarray) else [one(im) for im in images]


# ---------------------------------------------------------------------------------------------- helpers
def _seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and (now or once imported) torch's global generators, as a worker does."""
    from benchsuite.runner.startup import when_imported

    random.seed(seed)
    np.random.seed(seed % 2**32)
    when_imported("torch", lambda torch: torch.manual_seed(seed))


def _context(data: TinyData, seed: int, cache_dir: Path, device: str) -> Context:
    return Context(device=device, seed=seed, budget=data.budget, cache_dir=cache_dir, num_threads=1)


def _where(exc: BaseException) -> str:
    """``file:line`` of the innermost frame of a traceback (where the author's code raised)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    f = frames[-1]
    return f" (at {Path(f.filename).name}:{f.lineno})"


def _raised(what: str, exc: BaseException) -> str:
    return f"{what} raised {type(exc).__name__}: {exc}{_where(exc)}"


def _same(a: Any, b: Any) -> bool:
    """Whether two parameter values are equal (arrays compared element-wise)."""
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        try:
            return bool(np.array_equal(np.asarray(a), np.asarray(b)))
        except Exception:
            return False
    try:
        return bool(a == b)
    except Exception:
        return False


def _fingerprint(value: Any, depth: int = 0, seen: set[int] | None = None) -> Any:
    """A comparable summary of ``value`` that changes when its content changes (arrays and torch tensors are
    hashed, modules by their state dict, plain objects by their attributes, a few levels deep)."""
    seen = set() if seen is None else seen
    if value is None or isinstance(value, (bool, int, str, bytes)):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        digest = hashlib.sha1(data.view(np.uint8).reshape(-1) if data.dtype != object else
                              repr(data.tolist()).encode()).hexdigest()
        return ("array", data.dtype.str, data.shape, digest)
    if isinstance(value, np.generic):
        return repr(value)
    if id(value) in seen or depth > 4:
        return type(value).__name__
    seen = seen | {id(value)}
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        try:
            return _fingerprint(value.detach().cpu().float().numpy(), depth + 1, seen)
        except Exception:
            return type(value).__name__
    if callable(getattr(value, "state_dict", None)) and hasattr(value, "parameters"):  # a torch module
        try:
            return ("module", _fingerprint(dict(value.state_dict()), depth + 1, seen))
        except Exception:
            return type(value).__name__
    if isinstance(value, dict):
        return tuple(sorted((repr(k), _fingerprint(v, depth + 1, seen)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_fingerprint(v, depth + 1, seen) for v in value)
    if isinstance(value, (set, frozenset)):
        return tuple(sorted(repr(v) for v in value))
    if inspect.isroutine(value) or inspect.ismodule(value) or isinstance(value, type):
        return type(value).__name__
    attrs = getattr(value, "__dict__", None)
    if isinstance(attrs, dict):
        return (type(value).__name__, _fingerprint(attrs, depth + 1, seen))
    return type(value).__name__


def _public_state(pipeline: Pipeline) -> dict[str, Any]:
    return {k: _fingerprint(v) for k, v in vars(pipeline).items() if not k.startswith("_")}


# ---------------------------------------------------------------------------------------------- the checks
@dataclass
class _State:
    cls: type
    params: dict[str, Any]
    data: TinyData | None = None
    task: CheckAdapter | None = None
    cache_dir: Path | None = None
    device: str = "cpu"
    seed: int = 0
    fitted: Pipeline | None = None
    outputs: list[Any] | None = None
    ctx_info: Any = None
    state_before: dict[str, Any] = field(default_factory=dict)
    state_after: dict[str, Any] = field(default_factory=dict)


def _check_declarations(s: _State) -> str:
    problems = pipeline_problems(s.cls)
    if problems:
        raise CheckFailed("; ".join(problems))
    return ""


def _check_profile_params(s: _State) -> str:
    declared = getattr(s.cls, "profile_params", None) or {}
    if not isinstance(declared, dict):
        raise CheckFailed(f"{s.cls.__name__}.profile_params must be a dict {{profile: {{parameter: value}}}}, "
                          f"got {type(declared).__name__}")
    names = set(constructor_parameters(s.cls))
    problems = []
    for profile, values in declared.items():
        if profile not in PROFILES:
            problems.append(f"profile {profile!r} is not one of {', '.join(PROFILES)}")
        elif not isinstance(values, dict):
            problems.append(f"profile_params[{profile!r}] must be a dict of constructor parameters")
        else:
            unknown = sorted(set(values) - names)
            if unknown:
                problems.append(f"profile_params[{profile!r}] names {', '.join(map(repr, unknown))}, which "
                                f"__init__ does not take (it takes: {', '.join(sorted(names)) or 'nothing'})")
    if problems:
        raise CheckFailed("; ".join(problems))
    return "" if declared else "none declared (the profiles' task budgets only)"


def _check_init_signature(s: _State) -> str:
    if s.cls.__init__ is object.__init__:
        return "no hyper-parameters"
    params = inspect.signature(s.cls.__init__).parameters.values()
    var = [p for p in params if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if var:
        shown = ", ".join(("*" if p.kind == p.VAR_POSITIONAL else "**") + p.name for p in var)
        raise CheckFailed(f"__init__ takes {shown}: declare every hyper-parameter as a named argument with a "
                          f"default (def __init__(self, k: int = 5)), so that get_params(), --param and the "
                          f"record's params can see it")
    no_default = [p.name for p in params if p.name != "self" and p.default is p.empty]
    if no_default:
        raise CheckFailed(f"__init__ argument(s) {', '.join(no_default)} have no default: the runner builds "
                          f"pipelines from parameters it may not pass; give each a default")
    return ""


def _build(s: _State) -> Pipeline:
    return s.cls(**s.params)


def _check_constructs(s: _State) -> str:
    try:
        _build(s)
    except Exception as exc:
        raise CheckFailed(_raised(f"{s.cls.__name__}(**{s.params!r:.200})", exc)) from None
    return ""


def _check_params_stored(s: _State) -> str:
    pipeline = _build(s)
    missing, changed = [], []
    for name, (_, default) in constructor_parameters(s.cls).items():
        expected = s.params.get(name, default)
        if not hasattr(pipeline, name):
            missing.append(name)
        elif not _same(getattr(pipeline, name), expected):
            changed.append(f"{name} (given {expected!r:.60}, stored {getattr(pipeline, name)!r:.60})")
    problems = []
    if missing:
        problems.append(f"__init__ does not store {', '.join(missing)} under the same name: write "
                        f"self.{missing[0]} = {missing[0]} (not another attribute name), otherwise get_params() "
                        f"and the record's params lose it")
    if changed:
        problems.append(f"__init__ changes {'; '.join(changed)}: store arguments as given and validate or "
                        f"convert them in fit()")
    if problems:
        raise CheckFailed("; ".join(problems))
    return ""


def _check_params_round_trip(s: _State) -> str:
    pipeline = _build(s)
    names = set(constructor_parameters(s.cls))
    got = pipeline.get_params()
    if set(got) != names:
        raise CheckFailed(f"get_params() returns {sorted(got)}, expected every constructor argument "
                          f"{sorted(names)}")
    clone = s.cls(**got)
    differ = [n for n in names if not _same(clone.get_params()[n], got[n])]
    if differ:
        raise CheckFailed(f"{s.cls.__name__}(**get_params()) differs in {', '.join(differ)}")
    back = pipeline.set_params(**got)
    if back is not pipeline:
        raise CheckFailed(f"set_params() returned {type(back).__name__}, expected the pipeline itself (self)")
    differ = [n for n in names if not _same(pipeline.get_params()[n], got[n])]
    if differ:
        raise CheckFailed(f"set_params() then get_params() changed {', '.join(differ)}")
    return ""


def _fit(s: _State) -> tuple[Pipeline, Any, Context]:
    assert s.data is not None and s.cache_dir is not None
    pipeline = _build(s)
    ctx = _context(s.data, s.seed, s.cache_dir, s.device)
    _seed_everything(s.seed)
    returned = pipeline.fit(s.data.train, s.data.val, ctx)
    return pipeline, returned, ctx


def _check_data(s: _State) -> None:
    """The tiny data of the pipeline's task and the task's check adapter, into ``s`` (once)."""
    if s.data is not None:
        return
    try:
        s.data = tiny_data(s.cls.task)
    except NotImplementedError as exc:
        raise CheckFailed(f"no data to fit on: {exc}") from None
    except Exception as exc:
        raise CheckFailed(_raised(f"the check data of task {s.cls.task!r}", exc)) from None
    s.task = get_task(s.cls.task).checks
    s.cache_dir = s.cache_dir or _scratch_folder("benchsuite-testing-cache-")


def _check_fit_returns_self(s: _State) -> str:
    _check_data(s)
    try:
        pipeline, returned, ctx = _fit(s)
    except Exception as exc:
        raise CheckFailed(_raised("fit()", exc)) from None
    s.fitted, s.ctx_info = pipeline, ctx.info
    if returned is not pipeline:
        got = "None" if returned is None else f"a {type(returned).__name__}"
        raise CheckFailed(f"fit() returned {got}; end fit() with `return self` (the runner fails such a job)")
    return ""


def _check_fit_info_json(s: _State) -> str:
    info = s.ctx_info
    if not isinstance(info, dict):
        raise CheckFailed(f"ctx.info is a {type(info).__name__}; use ctx.record(key=value)")
    bad = []
    for key, value in info.items():
        try:
            json.dumps({key: value})
        except (TypeError, ValueError) as exc:
            bad.append(f"{key!r} ({exc})")
    if bad:
        raise CheckFailed(f"ctx.record() got values that are not JSON-serialisable: {'; '.join(bad)}; convert "
                          f"numpy values with int(), float() or .tolist()")
    problems = fit_info_problems(json.loads(json.dumps(info)))
    if problems:  # the runner would record the job as failed (invalid-output)
        raise CheckFailed(f"fit_info keys with a fixed shape (benchsuite.results.schema.FitInfo) are of another "
                          f"shape: {'; '.join(problems)}; make a choice on val with ctx.select() (or report one with "
                          f"ctx.record_selection())")
    return ""


def _predict(s: _State, images: Any, what: str) -> list[Any]:
    assert s.task is not None and s.fitted is not None and s.data is not None
    try:
        return s.task.predict(s.fitted, images, s.data.num_classes)
    except OutputValidationError as exc:
        raise CheckFailed(f"{what}: {exc}") from None
    except Exception as exc:
        raise CheckFailed(_raised(f"{s.task.method}() on {what}", exc)) from None


def _check_outputs_valid(s: _State) -> str:
    assert s.data is not None and s.fitted is not None
    s.state_before = _public_state(s.fitted)
    s.outputs = _predict(s, s.data.images, "the test images")
    s.state_after = _public_state(s.fitted)
    return ""


def _check_predict_keeps_state(s: _State) -> str:
    """Compares the fitted state before and after the prediction of ``outputs_valid``."""
    before, after = s.state_before, s.state_after
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if changed:
        raise CheckFailed(f"{s.task.method if s.task else 'predict'}() changed the fitted attribute(s) "
                          f"{', '.join(changed)}: prediction must not change state (keep caches in "
                          f"_private attributes; put a torch model in eval mode in fit())")
    return ""


def _check_empty_input(s: _State) -> str:
    assert s.task is not None and s.fitted is not None and s.data is not None
    try:
        s.task.empty(s.fitted, s.data.images, s.data.num_classes)
    except OutputValidationError as exc:
        raise CheckFailed(f"no images: {exc}") from None
    except Exception as exc:
        raise CheckFailed(_raised(f"{s.task.method}() on no images", exc) + "; return an empty result") from None
    return ""


def _check_single_image(s: _State) -> str:
    assert s.task is not None and s.fitted is not None and s.data is not None
    _predict(s, s.data.images[:1], "one image")
    try:  # the runner's latency measurement calls the single-image method, where the task has one
        s.task.single(s.fitted, s.data.images[0], s.data.num_classes)
    except OutputValidationError as exc:
        raise CheckFailed(str(exc)) from None
    except Exception as exc:
        raise CheckFailed(_raised(f"{s.task.method}(image)", exc)) from None
    return ""


def _check_grey_images(s: _State) -> str:
    assert s.data is not None
    _predict(s, _grey(s.data.images), "grey images (RGB arrays with three equal channels)")
    return ""


def _check_same_seed(s: _State) -> str:
    assert s.task is not None and s.outputs is not None and s.data is not None
    try:
        pipeline, _, _ = _fit(s)
    except Exception as exc:
        raise CheckFailed(_raised("a second fit() with the same seed", exc)) from None
    first, s.fitted = s.fitted, pipeline
    try:
        again = _predict(s, s.data.images, "the test images after a second fit")
    finally:
        s.fitted = first
    for i, (a, b) in enumerate(zip(s.outputs, again)):
        diff = s.task.compare(a, b)
        if diff:
            where = f"image {i}: " if len(s.outputs) > 1 else ""
            raise CheckFailed(f"two fits with seed {s.seed} on the same data predict differently ({where}{diff}); "
                              f"draw every random number from ctx.seed (ctx.rng(), torch.Generator seeded from "
                              f"ctx.seed) and avoid unseeded global state")
    return ""


_CHECK_FUNCTIONS: dict[str, Callable[[_State], str]] = {
    "declarations": _check_declarations,
    "profile_params": _check_profile_params,
    "init_signature": _check_init_signature,
    "constructs": _check_constructs,
    "params_stored": _check_params_stored,
    "params_round_trip": _check_params_round_trip,
    "fit_returns_self": _check_fit_returns_self,
    "fit_info_json": _check_fit_info_json,
    "outputs_valid": _check_outputs_valid,
    "predict_keeps_state": _check_predict_keeps_state,
    "empty_input": _check_empty_input,
    "single_image": _check_single_image,
    "grey_images": _check_grey_images,
    "same_seed_same_output": _check_same_seed,
}
#: what a check needs: a check is skipped when one of these did not pass
_NEEDS: dict[str, tuple[str, ...]] = {
    "constructs": ("declarations",),
    "params_stored": ("constructs",),
    "params_round_trip": ("constructs",),
    "fit_returns_self": ("constructs",),
    "fit_info_json": ("fit_returns_self",),
    "outputs_valid": ("fit_returns_self",),
    "predict_keeps_state": ("outputs_valid",),
    "empty_input": ("fit_returns_self",),
    "single_image": ("fit_returns_self",),
    "grey_images": ("fit_returns_self",),
    "same_seed_same_output": ("outputs_valid",),
}


def check_pipeline(cls: type, params: dict[str, Any] | None = None, *, profile: str | None = "smoke",
                   checks: Iterable[str] | None = None, device: str = "cpu", seed: int = 0,
                   cache_dir: Path | None = None) -> list[CheckResult]:
    """Run the conformance checks on pipeline class ``cls``; one :class:`CheckResult` per check.

    Args:
        cls: the pipeline class (not an instance).
        params: constructor parameters, over the class's ``profile_params[profile]``.
        profile: whose ``profile_params`` size the pipeline (``"smoke"``: the sizes that run in seconds on
            tiny data); None for the constructor's defaults.
        checks: a subset of :data:`CHECKS` to run (the checks they need run too); default: all.
        device: ``"cpu"`` or ``"cuda"``.
        seed: the seed of both fits.
        cache_dir: the ``ctx.cache_dir`` the pipeline gets (default: a scratch folder removed at exit).

    Never raises for the pipeline's own errors: they become failed checks, with what to change.
    """
    wanted = set(CHECKS if checks is None else checks)
    unknown = wanted - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown check(s) {sorted(unknown)}; expected some of {list(CHECKS)}")
    closure = set(wanted)
    for name in reversed(CHECKS):  # a check's prerequisites run too
        if name in closure:
            closure.update(_NEEDS.get(name, ()))
    declared = pipeline_params(cls, profile) if profile and isinstance(cls, type) else {}
    state = _State(cls=cls, params={**declared, **(params or {})}, device=device, seed=seed, cache_dir=cache_dir)
    results: dict[str, CheckResult] = {}
    for name in CHECKS:
        if name not in closure:
            continue
        missing = [n for n in _NEEDS.get(name, ()) if not results.get(n, CheckResult(n, PASSED)).passed]
        if name != "declarations" and not results.get("declarations", CheckResult("", PASSED)).passed:
            missing = missing or ["declarations"]
        if missing:
            results[name] = CheckResult(name, SKIPPED, f"needs {', '.join(missing)} to pass first")
            continue
        start = time.perf_counter()
        try:
            note = _CHECK_FUNCTIONS[name](state)
            results[name] = CheckResult(name, PASSED, note, time.perf_counter() - start)
        except CheckFailed as exc:
            results[name] = CheckResult(name, FAILED, str(exc), time.perf_counter() - start)
        except Exception as exc:  # a failure of the check's own set-up still names the check
            results[name] = CheckResult(name, FAILED, _raised(name, exc), time.perf_counter() - start)
        log.debug("%s: %s", getattr(cls, "id", cls), results[name].line())
    return [results[n] for n in CHECKS if n in wanted]


def failures(results: Sequence[CheckResult]) -> list[CheckResult]:
    """The failed results of :func:`check_pipeline`."""
    return [r for r in results if r.failed]


# ---------------------------------------------------------------------------------------------- pytest
_MEMO: dict[tuple[Any, str], dict[str, CheckResult]] = {}


class PipelineCheck:
    """One named check as a pytest parameter: ``check(pipeline)`` fails the test with the check's message.

    All checks of a class run together the first time one of them is called (one fit, not one per check);
    the others read the remembered results.
    """

    def __init__(self, name: str, params: dict[str, Any] | None = None, profile: str | None = "smoke"):
        self.name = name
        self.params = dict(params or {})
        self.profile = profile

    def __repr__(self) -> str:
        return self.name

    def __call__(self, pipeline: type) -> None:
        key = (pipeline, repr(sorted(self.params.items())) + repr(self.profile))
        if key not in _MEMO:
            _MEMO[key] = {r.name: r for r in check_pipeline(pipeline, self.params, profile=self.profile)}
        result = _MEMO[key][self.name]
        if result.status == SKIPPED:
            import pytest

            pytest.skip(result.message)
        if result.failed:
            raise CheckFailed(f"{getattr(pipeline, 'id', pipeline)}: check {self.name} failed: {result.message}")


def parametrize_with_checks(classes: Sequence[type], params: dict[Any, dict[str, Any]] | None = None,
                            profile: str | None = "smoke") -> Any:
    """A ``pytest.mark.parametrize`` over every (pipeline class, check) pair, for a test taking
    ``(pipeline, check)`` that calls ``check(pipeline)``.

    ``params`` optionally maps a class (or its id) to constructor overrides for the checks.
    """
    import pytest

    cases, ids = [], []
    for cls in classes:
        extra = (params or {}).get(cls) or (params or {}).get(getattr(cls, "id", None)) or {}
        for name in CHECKS:
            cases.append((cls, PipelineCheck(name, extra, profile)))
            ids.append(f"{getattr(cls, 'id', None) or getattr(cls, '__name__', cls)}-{name}")
    return pytest.mark.parametrize(("pipeline", "check"), cases, ids=ids)
