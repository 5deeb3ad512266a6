"""Pipeline parameters and option values: parsed and checked before any job starts.

One place turns what a user typed (``--param cnn.epochs=30``, ``--seeds 0,1``) into typed values, so that a
misspelt name or a malformed value fails the command with one line naming the parameter and what it
accepts, instead of failing a job late or being silently misread.

A ``--param`` value is parsed to the type of the constructor's annotation, else of its default:
``int``, ``float``, ``bool`` (``true/false/yes/no/1/0``), ``str``, ``None`` (``none`` or ``null``, where the
annotation or default allows it), tuples and lists (``1,2,3``, ``(1,2)`` or ``[1, 2]``, elements parsed to
the element type) and dicts (JSON). Values given as Python objects (a profile's parameters, or
``RunConfig.params`` from code) are checked against the same types.
"""

from __future__ import annotations

import inspect
import json
import math
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

from benchsuite.errors import ConfigError

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null"}
_MISSING = inspect.Parameter.empty


# ------------------------------------------------------------------ command-line option values
def positive_int(value: str, what: str) -> int:
    """An integer of at least 1, else a ConfigError that states the valid range."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{what} must be a whole number of at least 1, got {value!r}") from None
    if number < 1:
        raise ConfigError(f"{what} must be at least 1, got {number}")
    return number


def positive_float(value: Any, what: str, unit: str = "", minimum: float = 0.0) -> float:
    """A finite number above ``minimum`` (exclusive), else a ConfigError stating the valid range."""
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ConfigError(f"{what} must be a number above {minimum:g}{unit}, got {value!r}") from None
    if not math.isfinite(number) or number <= minimum:
        raise ConfigError(f"{what} must be a finite number above {minimum:g}{unit}, got {value!r}")
    return number


def name_list(value: str, what: str) -> list[str]:
    """A comma-separated list of at least one non-empty name (``"a, b"`` -> ``["a", "b"]``)."""
    items = [v.strip() for v in str(value).split(",")]
    if not value or not all(items):
        raise ConfigError(f"{what} must be a comma-separated list of non-empty names, got {value!r}")
    twice = sorted({v for v in items if items.count(v) > 1})
    if twice:
        raise ConfigError(f"{what} lists {', '.join(repr(v) for v in twice)} more than once: {value!r}")
    return items


def seed_list(value: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``: at least one non-negative integer, no empty items, no duplicates."""
    items = [v.strip() for v in str(value).split(",")]
    try:
        seeds = [int(v) for v in items]
    except ValueError:
        raise ConfigError(f"--seeds must be non-negative integers separated by commas (for example 0,1,2), "
                          f"got {value!r}") from None
    if any(s < 0 or s >= 2**32 for s in seeds):
        raise ConfigError(f"--seeds must lie in 0..{2**32 - 1}, got {value!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds lists a seed twice: {value!r}")
    return seeds


# ------------------------------------------------------------------ --param PIPELINE.NAME=VALUE
def split_assignments(items: Iterable[str]) -> dict[str, dict[str, str]]:
    """``["cnn.epochs=3"]`` -> ``{"cnn": {"epochs": "3"}}`` (values stay text; see :func:`check_params`)."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        pipeline, dot, name = key.strip().partition(".")
        if not sep or not dot or not pipeline or not name or not name.isidentifier():
            raise ConfigError(f"--param {item!r}: expected PIPELINE.NAME=VALUE, for example cnn.epochs=3")
        out.setdefault(pipeline, {})[name] = raw.strip()
    return out


def constructor_parameters(cls: type) -> dict[str, tuple[Any, Any]]:
    """``{name: (annotation or empty, default or empty)}`` of ``cls.__init__``'s named parameters."""
    init = cls.__init__
    try:
        signature = inspect.signature(init)
    except (TypeError, ValueError):
        return {}
    try:
        hints = typing.get_type_hints(init)
    except Exception:  # an annotation that does not resolve: fall back to the defaults' types
        hints = {}
    out = {}
    for name, p in signature.parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out[name] = (hints.get(name, _MISSING), p.default)
    return out


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _options(annotation: Any, default: Any) -> list[Any]:
    """The types a value may take: the annotation's union members, else the default's type."""
    if annotation is not _MISSING and annotation is not Any:
        origin = typing.get_origin(annotation)
        if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
            return list(typing.get_args(annotation))
        return [annotation]
    if default is _MISSING or default is None:  # nothing says what the value should be
        return []
    return [type(default)]


def _parse_sequence(text: str) -> list[str] | list[Any]:
    s = text.strip()
    if s.startswith("["):
        try:
            value = json.loads(s)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, list):
            return value
    if s[:1] in "([" and s[-1:] in ")]":
        s = s[1:-1]
    return [] if not s.strip() else [v.strip() for v in s.split(",")]


def _convert(value: Any, tp: Any, default: Any) -> Any:
    """``value`` as type ``tp``; raises ValueError when it is not one."""
    origin = typing.get_origin(tp) or tp
    args = typing.get_args(tp)
    if tp is type(None):
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
            return None
        raise ValueError
    if tp is Any:
        return _guess(value) if isinstance(value, str) else value
    if origin is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError
    if origin is int:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            return int(value.strip())
        raise ValueError
    if origin is float:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            return float(value.strip())
        raise ValueError
    if origin is str:
        if isinstance(value, str):
            return value
        raise ValueError
    if origin in (tuple, list):
        items = _parse_sequence(value) if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ValueError
        element = _element_type(args, default)
        converted = [_convert(v, element, _MISSING) if element is not None else
                     (_guess(v) if isinstance(v, str) else v) for v in items]
        return tuple(converted) if origin is tuple else converted
    if origin is dict:
        if isinstance(value, str):
            value = json.loads(value)
        if not isinstance(value, dict):
            raise ValueError
        return value
    if isinstance(tp, type):  # any other class: accept instances as they are
        if isinstance(value, tp):
            return value
        raise ValueError
    return value


def _element_type(args: tuple[Any, ...], default: Any) -> Any:
    if args and args[-1] is not Ellipsis and len(set(args)) == 1:
        return args[0]
    if len(args) == 2 and args[1] is Ellipsis:
        return args[0]
    if len(args) == 1:
        return args[0]
    if isinstance(default, (list, tuple)) and default:
        kinds = {type(v) for v in default}
        if len(kinds) == 1:
            return kinds.pop()
    return None


def _guess(text: str) -> Any:
    """A value with no declared type: JSON if it parses, else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def coerce(pipeline: str, name: str, value: Any, annotation: Any = _MISSING, default: Any = _MISSING) -> Any:
    """``value`` parsed or checked as the parameter's type; a ConfigError naming the parameter otherwise."""
    options = _options(annotation, default)
    if not options:
        return _guess(value) if isinstance(value, str) else value
    # None first where allowed, then the declared order (so "1" stays an int for int | float)
    ordered = sorted(options, key=lambda t: t is not type(None))
    for tp in ordered:
        try:
            return _convert(value, tp, default)
        except (ValueError, TypeError, json.JSONDecodeError):
            continue
    expected = " or ".join(_type_name(t) for t in options)
    example = f" (default {default!r})" if default is not _MISSING else ""
    raise ConfigError(f"--param {pipeline}.{name}={value!r}: expected {expected}{example}")


def check_params(pipeline: str, cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` checked against ``cls``'s constructor: unknown names refused (the valid names listed),
    text parsed to each parameter's type. Returns the typed values."""
    declared = constructor_parameters(cls)
    accepts_any = any(p.kind == p.VAR_KEYWORD for p in _signature_params(cls))
    out = {}
    for name, value in values.items():
        if name not in declared:
            if accepts_any:
                out[name] = _guess(value) if isinstance(value, str) else value
                continue
            valid = ", ".join(sorted(declared)) or "none"
            raise ConfigError(f"--param {pipeline}.{name}: {pipeline} has no parameter {name!r}; "
                              f"valid names: {valid}")
        annotation, default = declared[name]
        out[name] = coerce(pipeline, name, value, annotation, default)
    return out


def passed_params(pipeline: str, cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """The constructor arguments a job passes to ``cls``: ``values`` (the profile's ``profile_params`` and the
    user's ``--param``) through JSON, as the job file carries them to the worker, then parsed to the types of the
    constructor's annotations or defaults (:func:`check_params`): a tuple in ``profile_params`` reaches a
    parameter annotated ``list[int]`` as a list, and one annotated ``tuple[int, ...]`` as a tuple. The worker
    builds every pipeline from these, and ``benchsuite check`` too, so both pass the same values.

    A value JSON cannot carry is a ConfigError naming the parameter."""
    from benchsuite.results.atomic import _json_default  # what the job file is written with (JobSpec.write)

    out = {}
    for name, value in values.items():
        try:
            out[name] = json.loads(json.dumps(value, default=_json_default))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{pipeline}: parameter {name}={value!r:.80} is not a JSON value ({exc}); a job "
                              f"carries its parameters to the worker as JSON (numbers, strings, booleans, None, "
                              f"lists, tuples and dicts of them)") from None
    return check_params(pipeline, cls, out)


def _signature_params(cls: type) -> list[inspect.Parameter]:
    try:
        return list(inspect.signature(cls.__init__).parameters.values())
    except (TypeError, ValueError):
        return []


def check_all(requested: dict[str, dict[str, Any]], classes: dict[str, Callable[..., Any]]) -> \
        dict[str, dict[str, Any]]:
    """:func:`check_params` for each pipeline id in ``requested``; ``classes`` maps ids to classes."""
    out = {}
    for pipeline, values in requested.items():
        if pipeline not in classes:
            known = ", ".join(sorted(classes)) or "none"
            raise ConfigError(f"--param names pipeline {pipeline!r}, which is not in this run "
                              f"(pipelines in this run: {known})")
        out[pipeline] = check_params(pipeline, classes[pipeline], values)  # type: ignore[arg-type]
    return out
