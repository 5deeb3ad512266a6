"""Effective receptive fields (Luo, Li, Urtasun & Zemel, NeurIPS 2016) of the networks the suite trains.

The *theoretical* receptive field of a unit is every input pixel that can move it; the *effective* one (ERF) is
how much each of them does: the absolute gradient of the unit with respect to the input. Luo et al. found it
Gaussian-shaped, much smaller than the theoretical field, growing with training, and smaller for a stack of 3x3
convolutions than for one large kernel of the same theoretical size. This module measures both for the centre
unit of a named layer, so every CNN a run trains can be checked against those claims.

What is measured (:func:`input_gradient_map`): the centre unit of the layer's output map (row ``h // 2``, column
``w // 2``, every channel: the gradient sent back is 1 there and 0 elsewhere), back-propagated to a fixed batch of
same-sized input images; per image the absolute input gradient summed over the input channels, then the mean over
the images, normalised to sum 1. Always in float32, in eval mode (batch norm with its running statistics, which at
initialisation are the identity, no dropout), without touching the parameters' gradients.

The theoretical field (:func:`theoretical_field`) is computed from the layer stack as the network runs: every
convolution, pooling, padding, slicing and resampling call is traced (a ``TorchFunctionMode``) and each feature
map's field (size, jump between units, centre of its first unit, in input pixels) derived from its inputs';
element-wise operations (residual additions, concatenation along channels, activations, normalisation) take the
union of their inputs' fields, so branching graphs are exact, not only chains.

Sizes reported (:func:`erf_stats`): the ``radius`` in input pixels of the disc around the gradient's centre of mass
that holds ``share`` (default 0.9) of the gradient mass, and the ``sigma`` of a 2-D Gaussian fitted to the map by
least squares (axis-aligned: ``sigma_y``, ``sigma_x``; ``sigma`` is their geometric mean) with the fit's ``r2``
(how Gaussian the map is), and ``rf_area_share``, the disc's area over the theoretical field's.

The hook for any network (:class:`ErfProbe`): a probe holds the layer and the images and measures at
initialisation and after training; :class:`benchsuite.training.Trainer` runs one passed as ``erf=`` (or built
from the pipeline's ``erf_layer`` declaration, see :meth:`ErfProbe.from_request`), and :meth:`ErfProbe.finish`
saves the maps to the job folder as ``erf.npz`` (:mod:`benchsuite.results.erf`, which the report reads without
torch: it draws them from the run folder alone) and the sizes into ``fit_info["erf"]``.

Importing this module imports torch; the framework imports it only on a deep pipeline's path.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from benchsuite.api import Context
from benchsuite.results.erf import ERF_FILE, save_erf

log = logging.getLogger(__name__)

#: the share of the gradient mass whose disc gives the ERF's radius
DEFAULT_SHARE = 0.9
#: images a probe averages over when the caller does not say
DEFAULT_IMAGES = 32
STAGES = ("init", "trained")


# ------------------------------------------------------------------------------------------ theoretical field


@dataclass(frozen=True)
class Field:
    """The theoretical receptive field of the units of one feature map, per axis ``(y, x)``, in input pixels.

    Unit ``(i, j)`` of the map sees the input box centred on ``(first[0] + i * jump[0], first[1] + j * jump[1])``
    (continuous coordinates: input pixel ``k`` spans ``[k, k + 1)``) of ``size`` pixels. A ``whole`` field sees
    the whole input (after a global pooling); its other numbers are then meaningless.
    """

    size: tuple[float, float]
    jump: tuple[float, float]
    first: tuple[float, float]
    whole: bool = False

    @classmethod
    def pixel(cls) -> Field:
        """The field of an input pixel: itself."""
        return cls((1.0, 1.0), (1.0, 1.0), (0.5, 0.5))

    def centre(self, i: float, j: float) -> tuple[float, float]:
        """``(y, x)`` centre of unit ``(i, j)`` in input pixels."""
        return self.first[0] + i * self.jump[0], self.first[1] + j * self.jump[1]

    def box(self, i: float, j: float) -> tuple[float, float, float, float]:
        """``(x1, y1, x2, y2)`` input box of unit ``(i, j)``'s field (may reach past the input's border)."""
        cy, cx = self.centre(i, j)
        return cx - self.size[1] / 2, cy - self.size[0] / 2, cx + self.size[1] / 2, cy + self.size[0] / 2

    def window(self, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[float],
               dilation: Sequence[int] = (1, 1)) -> Field:
        """The field after a sliding window (convolution or pooling) of ``kernel``, ``stride``, ``padding`` (the
        leading pad per axis) and ``dilation``, per axis ``(y, x)``."""
        if self.whole:
            return self
        size, jump, first = [], [], []
        for a in range(2):
            extent = dilation[a] * (kernel[a] - 1) + 1
            size.append(self.size[a] + (extent - 1) * self.jump[a])
            first.append(self.first[a] + ((extent - 1) / 2 - padding[a]) * self.jump[a])
            jump.append(self.jump[a] * stride[a])
        return Field((size[0], size[1]), (jump[0], jump[1]), (first[0], first[1]))

    def shifted(self, offset: Sequence[float], step: Sequence[float] = (1, 1)) -> Field:
        """The field of the map that starts ``offset`` units in (per axis) and keeps every ``step``-th unit."""
        if self.whole:
            return self
        return Field(self.size, (self.jump[0] * step[0], self.jump[1] * step[1]),
                     (self.first[0] + offset[0] * self.jump[0], self.first[1] + offset[1] * self.jump[1]))

    def resampled(self, factor: Sequence[float], interpolates: bool) -> Field:
        """The field after resampling by ``factor`` (output units per input unit, per axis; half-pixel centres):
        an interpolating resampler reads two neighbours (one jump more of field), nearest-neighbour one."""
        if self.whole or tuple(factor) == (1.0, 1.0):  # a same-size resampling reads the pixel itself
            return self
        jump = (self.jump[0] / factor[0], self.jump[1] / factor[1])
        first = tuple(self.first[a] + (0.5 / factor[a] - 0.5) * self.jump[a] for a in range(2))
        grow = self.jump if interpolates else (0.0, 0.0)
        return Field((self.size[0] + grow[0], self.size[1] + grow[1]), jump, (first[0], first[1]))

    @staticmethod
    def union(fields: Sequence[Field]) -> Field:
        """The field of an element-wise combination of maps of the same size: per unit, the union of its inputs'
        boxes (whole when any input is whole)."""
        if any(f.whole for f in fields):
            return fields[0] if fields[0].whole else next(f for f in fields if f.whole)
        base = fields[0]
        size, first = [], []
        for a in range(2):
            lo = min(f.first[a] - f.size[a] / 2 for f in fields)
            hi = max(f.first[a] + f.size[a] / 2 for f in fields)
            size.append(hi - lo)
            first.append((lo + hi) / 2)
        return Field((size[0], size[1]), base.jump, (first[0], first[1]))


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, (list, tuple)):
        return (int(v[0]), int(v[-1])) if len(v) else (1, 1)
    return int(v), int(v)


def _arg(args: Sequence[Any], kwargs: Mapping[str, Any], index: int, name: str, default: Any) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def _spatial(t: Any) -> tuple[int, int] | None:
    return (int(t.shape[-2]), int(t.shape[-1])) if isinstance(t, torch.Tensor) and t.ndim >= 3 else None


class FieldTracer(TorchFunctionMode):
    """Traces every torch call of a forward pass and derives the theoretical field of each feature map.

    ``fields`` maps ``id(tensor)`` to ``(tensor, Field)`` (the tensor is kept alive so ids stay unique). Start it
    with the input's field (:meth:`start`); maps from calls it does not know and whose size differs from their
    inputs' are not traced (their field is unknown, and so is everything computed from them).
    """

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[int, tuple[torch.Tensor, Field]] = {}
        self.unknown: set[str] = set()

    def start(self, x: torch.Tensor) -> None:
        self.fields[id(x)] = (x, Field.pixel())

    def field(self, t: Any) -> Field | None:
        entry = self.fields.get(id(t)) if isinstance(t, torch.Tensor) else None
        return entry[1] if entry is not None and entry[0] is t else None

    def __torch_function__(self, func: Any, types: Any, args: Sequence[Any] = (),
                           kwargs: Mapping[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        try:
            self._propagate(getattr(func, "__name__", ""), args, kwargs, out)
        except Exception as exc:  # a tracing problem must never break the forward pass
            self.unknown.add(f"{getattr(func, '__name__', func)} ({exc})")
        return out

    def _inputs(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[tuple[torch.Tensor, Field]]:
        found = []
        for a in [*args, *kwargs.values()]:
            for t in (a if isinstance(a, (list, tuple)) else [a]):
                f = self.field(t)
                if f is not None:
                    found.append((t, f))
        return found

    def _set(self, out: Any, field: Field) -> None:
        for t in (out if isinstance(out, (list, tuple)) else [out]):
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                self.fields[id(t)] = (t, field)

    def _propagate(self, name: str, args: Sequence[Any], kwargs: Mapping[str, Any], out: Any) -> None:
        inputs = self._inputs(args, kwargs)
        if not inputs:
            return
        first, fin = inputs[0]
        out_t = out[0] if isinstance(out, (list, tuple)) and out and isinstance(out[0], torch.Tensor) else out
        if not isinstance(out_t, torch.Tensor):
            return
        if name == "conv2d":
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            k = (int(weight.shape[-2]), int(weight.shape[-1]))
            stride = _pair(_arg(args, kwargs, 3, "stride", 1))
            dil = _pair(_arg(args, kwargs, 5, "dilation", 1))
            pad = _arg(args, kwargs, 4, "padding", 0)
            if isinstance(pad, str):
                pad = (0, 0) if pad == "valid" else tuple((d * (kk - 1)) // 2 for d, kk in zip(dil, k))
            self._set(out, fin.window(k, stride, _pair(pad), dil))
        elif name in ("max_pool2d", "avg_pool2d", "max_pool2d_with_indices", "_max_pool2d"):
            k = _pair(_arg(args, kwargs, 1, "kernel_size", 1))
            s = _arg(args, kwargs, 2, "stride", None)
            stride = k if s is None or (isinstance(s, (list, tuple)) and not len(s)) else _pair(s)
            pad = _pair(_arg(args, kwargs, 3, "padding", 0))
            dil = _pair(_arg(args, kwargs, 4, "dilation", 1)) if "max" in name else (1, 1)
            self._set(out, fin.window(k, stride, pad, dil))
        elif name in ("adaptive_avg_pool2d", "adaptive_max_pool2d", "adaptive_max_pool2d_with_indices"):
            hw_in, hw_out = _spatial(first), _spatial(out_t)
            if hw_out == (1, 1) or hw_in is None or hw_out is None:
                self._set(out, Field(fin.size, fin.jump, fin.first, whole=True))
            else:  # an approximation: the window of an even split
                k = tuple(math.ceil(i / o) for i, o in zip(hw_in, hw_out))
                s = tuple(max(1, i // o) for i, o in zip(hw_in, hw_out))
                self._set(out, fin.window(k, s, (0, 0)))
        elif name == "pad":
            pads = list(_arg(args, kwargs, 1, "pad", ()))
            left, top = (pads[0] if pads else 0), (pads[2] if len(pads) > 2 else 0)
            self._set(out, fin.shifted((-top, -left)))
        elif name in ("interpolate", "upsample", "upsample_bilinear", "upsample_nearest"):
            hw_in, hw_out = _spatial(first), _spatial(out_t)
            if hw_in and hw_out:
                mode = str(_arg(args, kwargs, 3, "mode", "nearest"))
                factor = (hw_out[0] / hw_in[0], hw_out[1] / hw_in[1])
                self._set(out, fin.resampled(factor, interpolates="nearest" not in mode))
        elif name == "__getitem__":
            self._getitem(first, fin, args[1] if len(args) > 1 else None, out_t)
        elif name == "copy_" and len(args) > 1 and self.field(args[1]) is not None:
            # a traced map copied into a (view of a) fresh tensor, as a padded batch is built: the tensor the view
            # belongs to takes the map's field (the copy is assumed to start at its top-left corner)
            dst = args[0]
            self._set(dst, fin)
            base = getattr(dst, "_base", None)
            if base is not None and base.ndim >= 3:
                self._set(base, fin)
        else:
            self._elementwise(name, inputs, out, out_t)

    def _getitem(self, x: torch.Tensor, fin: Field, index: Any, out: torch.Tensor) -> None:
        idx = index if isinstance(index, tuple) else (index,)
        if any(i is None or isinstance(i, (int, torch.Tensor, list)) for i in idx):
            if _spatial(out) == _spatial(x):
                self._set(out, fin)
            return
        if Ellipsis in idx:
            at = idx.index(Ellipsis)
            idx = idx[:at] + (slice(None),) * (x.ndim - len(idx) + 1) + idx[at + 1:]
        idx = idx + (slice(None),) * (x.ndim - len(idx))
        offset, step = [], []
        for a, size in zip((x.ndim - 2, x.ndim - 1), x.shape[-2:]):
            start, _, st = idx[a].indices(int(size))
            offset.append(start)
            step.append(st)
        self._set(out, fin.shifted(offset, step))

    def _elementwise(self, name: str, inputs: list[tuple[torch.Tensor, Field]], out: Any, out_t: torch.Tensor) -> None:
        hw = _spatial(out_t)
        f0 = inputs[0][1]
        whole = Field(f0.size, f0.jump, f0.first, whole=True)
        if hw is None:  # a reduction over the map (a global pooling, a flattening)
            self._set(out, whole)
            return
        same = [f for t, f in inputs if _spatial(t) == hw]
        others = [(t, f) for t, f in inputs if _spatial(t) != hw]
        if same and all(_spatial(t) in ((1, 1), None) or f.whole for t, f in others):
            # maps of one size, plus pooled vectors broadcast onto them (whose field is the whole input)
            self._set(out, Field.union(same + [whole] * bool(others)))
        elif not same and hw == (1, 1):  # a mean or max over the map, keeping its axes
            self._set(out, whole)
        else:
            self.unknown.add(name)


# ------------------------------------------------------------------------------------------ layers and hooks


def find_layer(model: nn.Module, name: str) -> tuple[str, nn.Module]:
    """``(qualified name, module)`` of the layer ``name`` in ``model``: its exact qualified name, else the one
    module whose qualified name ends with ``"." + name`` (so a pipeline may name a layer of its network while the
    engine trains a wrapper around it). Raises ValueError naming the candidates when none or several match."""
    modules = dict(model.named_modules())
    if name in modules:
        return name, modules[name]
    matches = [q for q in modules if q.endswith("." + name)]
    if len(matches) == 1:
        return matches[0], modules[matches[0]]
    if matches:
        raise ValueError(f"ERF layer {name!r} is ambiguous in {type(model).__name__}: {sorted(matches)[:6]}")
    names = [q for q in modules if q][:12]
    raise ValueError(f"ERF layer {name!r} is not a module of {type(model).__name__} (layers: {names} ...)")


class _Reached(Exception):
    """Raised by the forward hook once the named layer has run: the rest of the network is not needed."""


def run_to_layer(model: nn.Module, layer: nn.Module, x: torch.Tensor,
                 call: Callable[[nn.Module, torch.Tensor], Any] | None = None) -> torch.Tensor:
    """The output of ``layer`` when ``model`` runs on ``x`` (``call(model, x)``, default ``model(x)``); the
    forward pass stops there. Raises ValueError when the layer does not run or returns no tensor."""
    seen: dict[str, Any] = {}

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        seen["out"] = output
        raise _Reached

    handle = layer.register_forward_hook(hook)
    try:
        (call or (lambda m, t: m(t)))(model, x)
    except _Reached:
        pass
    finally:
        handle.remove()
    if "out" not in seen:
        raise ValueError(f"the ERF layer ({type(layer).__name__}) did not run in the forward pass")
    out = seen["out"]
    if isinstance(out, (list, tuple)):
        out = out[0]
    elif isinstance(out, Mapping):
        out = next(iter(out.values()))
    if not isinstance(out, torch.Tensor) or out.ndim != 4:
        raise ValueError(f"the ERF layer must output a (N, C, H, W) map, got {type(out).__name__}"
                         f"{tuple(out.shape) if isinstance(out, torch.Tensor) else ''}")
    return out


class _EvalMode:
    """Every module in eval mode inside the block; each module's own mode restored after it."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.modes: list[tuple[nn.Module, bool]] = []

    def __enter__(self) -> nn.Module:
        self.modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        return self.model

    def __exit__(self, *exc: Any) -> None:
        for m, mode in self.modes:
            m.training = mode


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def theoretical_field(model: nn.Module, layer: str, x: torch.Tensor,
                      call: Callable[[nn.Module, torch.Tensor], Any] | None = None
                      ) -> tuple[Field | None, tuple[int, int]]:
    """``(field of the layer's units or None when a call on the way was not traceable, (h, w) of its map)`` for
    ``model`` run on ``x`` (one image is enough: ``(1, C, H, W)``)."""
    _, module = find_layer(model, layer)
    tracer = FieldTracer()
    with torch.no_grad(), _EvalMode(model):
        x = x.to(_device_of(model), torch.float32).clone()
        tracer.start(x)
        with tracer:
            out = run_to_layer(model, module, x, call)
    hw = (int(out.shape[-2]), int(out.shape[-1]))
    field = tracer.field(out)
    if field is None:
        log.warning("ERF: the theoretical field of %s is unknown (untraced calls: %s)", layer,
                    ", ".join(sorted(tracer.unknown)) or "none named")
    return field, hw


# ------------------------------------------------------------------------------------------ the gradient map


def input_gradient_map(model: nn.Module, layer: str, images: torch.Tensor, batch_size: int = 16,
                       call: Callable[[nn.Module, torch.Tensor], Any] | None = None
                       ) -> tuple[np.ndarray, tuple[int, int]]:
    """``(map (H, W) float64 summing to 1, (h, w) of the layer's map)``: the mean over ``images`` (``(N, C, H, W)``,
    the model's own input format) of the absolute input gradient of the layer's centre unit (all channels at row
    ``h // 2``, column ``w // 2``), summed over input channels. Eval mode, float32, parameters' gradients untouched.
    ``call(model, x)`` runs the model when ``model(x)`` does not (default ``model(x)``)."""
    _, module = find_layer(model, layer)
    device = _device_of(model)
    total: torch.Tensor | None = None
    hw = (0, 0)
    with _EvalMode(model), torch.autocast(device.type, enabled=False):
        for s in range(0, len(images), batch_size):
            x = images[s:s + batch_size].to(device, torch.float32).clone().requires_grad_(True)
            out = run_to_layer(model, module, x, call)
            hw = (int(out.shape[-2]), int(out.shape[-1]))
            unit = out[:, :, hw[0] // 2, hw[1] // 2].float().sum()
            (grad,) = torch.autograd.grad(unit, x)
            g = grad.detach().abs().sum(dim=1).sum(dim=0).double().cpu()
            total = g if total is None else total + g
    if total is None:
        raise ValueError("input_gradient_map: no images")
    m = total.numpy() / len(images)
    mass = float(m.sum())
    return (m / mass if mass > 0 else m), hw


# ------------------------------------------------------------------------------------------ sizes


def mass_radius(erf: np.ndarray, share: float = DEFAULT_SHARE, centre: tuple[float, float] | None = None) -> float:
    """The radius in pixels of the disc around ``centre`` (``(y, x)``, continuous pixel coordinates; default the
    map's centre of mass) holding ``share`` of the map's mass (``erf`` non-negative ``(H, W)``). Pixels count by
    their centres; the radius is interpolated between the two pixel distances that bracket the share."""
    m = np.asarray(erf, np.float64)
    total = float(m.sum())
    if total <= 0:
        return float("nan")
    ys, xs = np.mgrid[0:m.shape[0], 0:m.shape[1]] + 0.5
    if centre is None:
        centre = (float((m * ys).sum() / total), float((m * xs).sum() / total))
    d = np.hypot(ys - centre[0], xs - centre[1]).ravel()
    order = np.argsort(d, kind="stable")
    cum = np.cumsum(m.ravel()[order]) / total
    k = int(np.searchsorted(cum, share))
    if k >= len(d):
        return float(d[order[-1]])
    if k == 0:
        return float(d[order[0]])
    c0, c1, d0, d1 = cum[k - 1], cum[k], d[order[k - 1]], d[order[k]]
    return float(d0 + (share - c0) / (c1 - c0) * (d1 - d0)) if c1 > c0 else float(d1)


def fit_gaussian(erf: np.ndarray) -> dict[str, float]:
    """Least-squares fit of ``a * exp(-(y - my)^2 / (2 sy^2) - (x - mx)^2 / (2 sx^2))`` to ``erf`` (``(H, W)``):
    ``{"sigma_y", "sigma_x", "sigma" (geometric mean), "centre_y", "centre_x", "r2"}`` in pixels (continuous
    coordinates); ``r2`` is the share of the map's variance the Gaussian explains (1: exactly Gaussian)."""
    from scipy.optimize import least_squares

    m = np.asarray(erf, np.float64)
    total = float(m.sum())
    nan = {k: float("nan") for k in ("sigma_y", "sigma_x", "sigma", "centre_y", "centre_x", "r2")}
    if total <= 0 or m.size < 4:
        return nan
    ys, xs = np.mgrid[0:m.shape[0], 0:m.shape[1]] + 0.5
    my, mx = float((m * ys).sum() / total), float((m * xs).sum() / total)
    sy = math.sqrt(max(float((m * (ys - my) ** 2).sum() / total), 0.25))
    sx = math.sqrt(max(float((m * (xs - mx) ** 2).sum() / total), 0.25))
    scale = float(m.max())

    def residual(p: np.ndarray) -> np.ndarray:
        a, cy, cx, ly, lx = p
        g = a * np.exp(-0.5 * ((ys - cy) / np.exp(ly)) ** 2 - 0.5 * ((xs - cx) / np.exp(lx)) ** 2)
        return ((g - m) / scale).ravel()

    p0 = np.array([scale, my, mx, math.log(sy), math.log(sx)])
    fit = least_squares(residual, p0, method="trf", max_nfev=400)
    _, cy, cx, ly, lx = fit.x
    res = residual(fit.x) * scale
    ss_tot = float(((m - m.mean()) ** 2).sum())
    r2 = 1.0 - float((res ** 2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    s_y, s_x = float(np.exp(ly)), float(np.exp(lx))
    return {"sigma_y": s_y, "sigma_x": s_x, "sigma": math.sqrt(s_y * s_x), "centre_y": float(cy),
            "centre_x": float(cx), "r2": r2}


def erf_stats(erf: np.ndarray, share: float = DEFAULT_SHARE, field: Field | None = None) -> dict[str, float | None]:
    """The sizes of one ERF map: ``radius`` (pixels, :func:`mass_radius` at ``share``), the Gaussian fit's
    ``sigma``, ``sigma_y``, ``sigma_x`` and ``r2`` (:func:`fit_gaussian`), and, given the theoretical ``field``,
    ``rf_area_share``: the radius disc's area over the field's box (None for a whole or unknown field)."""
    radius = mass_radius(erf, share)
    g = fit_gaussian(erf)
    area = None
    if field is not None and not field.whole and radius == radius:
        area = math.pi * radius ** 2 / (field.size[0] * field.size[1])
    out: dict[str, float | None] = {"radius": radius, "sigma": g["sigma"], "sigma_y": g["sigma_y"],
                                    "sigma_x": g["sigma_x"], "gaussian_r2": g["r2"], "rf_area_share": area}
    return {k: (None if v is None or v != v else round(float(v), 4)) for k, v in out.items()}


# ------------------------------------------------------------------------------------------ the probe


def probe_images(data: Any, count: int = DEFAULT_IMAGES, size: int | None = None, scale: float = 1.0
                 ) -> torch.Tensor | None:
    """Probe images from a split: float32 ``(n, C, H, W)`` pixel values 0-255 times ``scale``, or None when the split
    gives none.

    ``data`` is an ``(N, H, W[, C])`` uint8 array, an object with such an ``images`` array (an ImageSet: its first
    ``count`` images, resized to ``size`` x ``size`` when given; they must be equal-sized otherwise), or a detection
    split (``samples`` with ``boxes``, ``labels``, ``difficult`` and ``load_image``): square crops around its first
    ``count`` non-difficult objects, each twice the object's longer side, resized to ``size`` (default 128) pixels
    (context past the border mirrored, :func:`benchsuite.ops.windows.crop_windows`).
    """
    from benchsuite.ops.windows import crop_windows, resize_image

    images = data if isinstance(data, np.ndarray) else getattr(data, "images", None)
    if isinstance(images, np.ndarray) and len(images):
        a = np.asarray(images[:count])
        if size is not None:
            a = np.stack([resize_image(im, (int(size), int(size))) for im in a])
    elif hasattr(data, "samples") and hasattr(data, "load_image"):
        side = int(size or 128)
        crops: list[np.ndarray] = []
        for i, s in enumerate(data.samples):
            boxes = np.asarray(s.boxes, np.float64)[~np.asarray(s.difficult, bool)]
            if len(boxes):
                centre = (boxes[:, :2] + boxes[:, 2:]) / 2
                half = (boxes[:, 2:] - boxes[:, :2]).max(axis=1, keepdims=True)
                crops.append(crop_windows(data.load_image(i), np.concatenate([centre - half, centre + half], 1),
                                          (side, side)))
            if sum(len(c) for c in crops) >= count:
                break
        if not crops:
            return None
        a = np.concatenate(crops)[:count]
    else:
        return None
    if a.ndim == 3:
        a = a[..., None]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))).float() * float(scale)


class ErfProbe:
    """Measures a network's ERF at initialisation and after training, and saves it (the hook for any network).

    Args:
        layer: the layer whose centre unit is measured (:func:`find_layer`: a qualified module name or its unique
            last part, e.g. ``"stages.2"``).
        images: ``(N, C, H, W)`` probe images in the model's input format (a tensor or an array), the same set at
            every stage: held-out images (val), which the measurement never feeds back into training.
        split: where the images come from, for the record (``"val"``).
        network: a name for the network in the report (default: the pipeline's id, from the trainer).
        share: the gradient mass the radius holds.
        call: ``call(model, x)`` runs the model on a probe batch when ``model(x)`` does not.
        input_note: what the images are (``"val images, float pixels 0-255"``), for the record.

    Usage without the engine::

        probe = ErfProbe("stages.2", val_batch)
        probe.measure(model, "init")
        ...  # train
        probe.measure(model, "trained")
        probe.finish(ctx)       # erf.npz in the job folder, fit_info["erf"]
    """

    def __init__(self, layer: str, images: torch.Tensor | np.ndarray, *, split: str = "val", network: str = "",
                 share: float = DEFAULT_SHARE, call: Callable[[nn.Module, torch.Tensor], Any] | None = None,
                 input_note: str = ""):
        if not 0 < share < 1:
            raise ValueError(f"ErfProbe: share={share}; expected a fraction in (0, 1)")
        x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
        if x.ndim != 4 or not len(x):
            raise ValueError(f"ErfProbe: images must be a non-empty (N, C, H, W) batch, got {tuple(x.shape)}")
        self.layer = layer
        self.images = x.detach().cpu()
        self.split = split
        self.network = network
        self.share = float(share)
        self.call = call
        self.input_note = input_note
        self.maps: dict[str, np.ndarray] = {}
        self.stats: dict[str, dict[str, float | None]] = {}
        self.field: Field | None = None
        self.map_hw: tuple[int, int] = (0, 0)
        self.qualified_layer = layer
        self.error = ""

    @classmethod
    def from_request(cls, request: Any, network: str = "") -> ErfProbe | None:
        """The probe the framework asked for (``ctx.erf``, a :class:`benchsuite.api.ErfRequest` built from the
        pipeline's ``erf_layer`` and ``erf_input`` and its val split, :func:`probe_images`), or None when there is
        none or the split gives no probe images."""
        if request is None or not getattr(request, "layer", ""):
            return None
        scale = float(getattr(request, "scale", 1.0))
        images = probe_images(request.data, int(request.count), request.size, scale)
        if images is None:
            log.warning("ERF: %s declares erf_layer %r but its %s split gives no probe images", network or "the "
                        "pipeline", request.layer, request.split)
            return None
        kind = "images" if hasattr(request.data, "images") or isinstance(request.data, np.ndarray) else \
            "crops around objects (twice the longer side)"
        return cls(request.layer, images, split=str(request.split), network=network,
                   input_note=f"{request.split} {kind}, float pixels 0-255 x {scale:g} (NCHW)")

    def try_measure(self, model: nn.Module, stage: str) -> bool:
        """:meth:`measure`, but a failure (a layer the model lacks, a forward pass the probe images do not fit) is
        logged and recorded in the summary (``error``) instead of raised: the measurement never fails a fit."""
        try:
            self.measure(model, stage)
            return True
        except Exception as exc:
            self.error = f"{stage}: {type(exc).__name__}: {exc}"
            log.warning("ERF of %s not measured (%s)", self.network or "the network", self.error)
            return False

    def measure(self, model: nn.Module, stage: str) -> dict[str, float | None]:
        """Measure the map at ``stage`` (``"init"`` or ``"trained"``) on ``model``; returns its sizes."""
        if stage not in STAGES:
            raise ValueError(f"ErfProbe.measure: stage {stage!r}; expected one of {STAGES}")
        self.qualified_layer = find_layer(model, self.layer)[0]
        if self.field is None:
            self.field, self.map_hw = theoretical_field(model, self.layer, self.images[:1], self.call)
        erf, self.map_hw = input_gradient_map(model, self.layer, self.images, call=self.call)
        self.maps[stage] = erf
        self.stats[stage] = erf_stats(erf, self.share, self.field)
        log.info("ERF %s %s (%s): radius %.1f px, sigma %.1f px", self.network or "network", self.layer, stage,
                 self.stats[stage]["radius"] or float("nan"), self.stats[stage]["sigma"] or float("nan"))
        return self.stats[stage]

    def rf_box(self) -> tuple[float, float, float, float]:
        """The centre unit's theoretical field as an input box (NaN when unknown or whole)."""
        if self.field is None or self.field.whole:
            return (math.nan,) * 4  # type: ignore[return-value]
        return self.field.box(self.map_hw[0] // 2, self.map_hw[1] // 2)

    def summary(self) -> dict[str, Any]:
        """The facts for ``fit_info["erf"]``: network, layer, images, split, input shape, share, the theoretical field
        (``theoretical_rf``: ``[h, w]`` pixels, ``"whole input"`` or None) and the sizes per stage measured."""
        f = self.field
        rf: Any = None if f is None else ("whole input" if f.whole else [round(f.size[0], 2), round(f.size[1], 2)])
        return {"network": self.network, "layer": self.qualified_layer, "images": len(self.images),
                "split": self.split, "input": list(self.images.shape[1:]), "input_note": self.input_note,
                "share": self.share, "theoretical_rf": rf,
                "rf_jump": None if f is None or f.whole else [f.jump[0], f.jump[1]],
                "layer_map": list(self.map_hw), **{stage: self.stats[stage] for stage in STAGES if stage in self.stats},
                **({"error": self.error} if self.error else {})}

    def finish(self, ctx: Context) -> dict[str, Any]:
        """Record the summary in ``fit_info["erf"]`` and, in a run (``ctx.job_dir`` set), save the maps as
        :data:`ERF_FILE` in the job folder; returns the summary."""
        facts = self.summary()
        job_dir = getattr(ctx, "job_dir", None)
        if job_dir is not None and self.maps:
            save_erf(Path(job_dir) / ERF_FILE, self.maps, self.rf_box(), facts)
            facts["file"] = ERF_FILE
        ctx.record(erf=facts)
        return facts
