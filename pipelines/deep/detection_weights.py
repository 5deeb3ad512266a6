"""Where a deep detector's starting weights come from, decided without ever downloading silently.

Resolution order (:func:`resolve_weights`):

1. a local file the user named (``--weights PATH``, ``ctx.weights``): a state dict of the whole detector
   or of its backbone, told apart by its keys;
2. torchvision's own pretrained weights, only when their file is already in the torch hub cache
   (``torch.hub.get_dir()/checkpoints``) or the user passed ``--download``: the COCO-trained detector
   first, else the ImageNet-trained backbone;
3. otherwise random initialisation ("scratch").

The record names the choice: ``scratch``, ``imagenet-backbone`` or ``coco`` (torchvision's files, or a
local file with the same name), ``backbone-file`` / ``detector-file`` (any other local file).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

log = logging.getLogger(__name__)

#: what ``pretrained`` may ask for
PRETRAINED_CHOICES = ("auto", "coco", "imagenet-backbone", "none")
#: keys that only a whole detector's state dict has (torchvision R-CNN, RetinaNet, FCOS, SSD)
_DETECTOR_PREFIXES = ("backbone.", "rpn.", "roi_heads.", "head.", "anchor_generator.")
#: wrappers that training scripts put around a state dict
_WRAPPER_KEYS = ("model", "state_dict", "model_state_dict", "net")


@dataclass
class WeightsChoice:
    """The starting weights of one model.

    Attributes:
        source: ``"scratch"``, ``"imagenet-backbone"``, ``"coco"``, ``"backbone-file"`` or ``"detector-file"``.
        detector: the torchvision weights enum of the whole detector to build with (COCO), or None.
        backbone: the torchvision weights enum of the backbone to build with (ImageNet), or None.
        file: the file the weights come from (a hub-cache file or the user's file), or None.
        state_dict: the user's state dict (already unwrapped) when ``file`` is the user's, else None.
        kind: ``"detector"`` or ``"backbone"`` for a user's state dict, else None.
    """

    source: str = "scratch"
    detector: Any = None
    backbone: Any = None
    file: str | None = None
    state_dict: Mapping[str, torch.Tensor] | None = field(default=None, repr=False)
    kind: str | None = None


def hub_checkpoint_path(weights: Any) -> Path:
    """The file ``torch.hub.load_state_dict_from_url`` keeps ``weights.url`` in (whether it exists or not)."""
    name = os.path.basename(urlparse(weights.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def is_cached(weights: Any) -> bool:
    """True when the weights enum's file is already in the local torch hub cache."""
    return weights is not None and hub_checkpoint_path(weights).is_file()


@contextlib.contextmanager
def downloads_forbidden(allowed: bool) -> Iterator[None]:
    """Makes any torch hub download raise (unless ``allowed``): the guarantee behind "never silently"."""
    if allowed:
        yield
        return
    original = torch.hub.download_url_to_file

    def refuse(url: str, dst: str, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"refusing to download {url} (pass --download to allow it, or put the file at {dst})")

    torch.hub.download_url_to_file = refuse
    try:
        yield
    finally:
        torch.hub.download_url_to_file = original


def unwrap_state_dict(obj: Any, where: str) -> dict[str, torch.Tensor]:
    """The tensor mapping inside a loaded checkpoint (plain, or under ``model``/``state_dict``)."""
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    for _ in range(2):
        if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
            if inner is not None:
                obj = inner
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError(f"{where}: expected a state dict (a mapping of parameter names to tensors), "
                         f"got {type(obj).__name__}")
    tensors = {str(k).removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ValueError(f"{where}: the state dict holds no tensors")
    return tensors


def state_dict_kind(state: Mapping[str, torch.Tensor]) -> str:
    """``"detector"`` when the keys are a whole detector's (``backbone.``, ``rpn.``, ``roi_heads.``, ``head.``),
    else ``"backbone"`` (a classification network's or a feature extractor's)."""
    hits = sum(k.startswith(_DETECTOR_PREFIXES) for k in state)
    return "detector" if hits >= 0.5 * len(state) else "backbone"


def read_weights_file(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """Load a local state dict (``weights_only``: no code runs) and tell whether it is a detector's."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"--weights {path}: no such file; expected a PyTorch state dict (.pth/.pt)")
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"--weights {file}: cannot read it as a PyTorch state dict "
                         f"({type(exc).__name__}: {exc})") from None
    state = unwrap_state_dict(obj, f"--weights {file}")
    return state, state_dict_kind(state)


def resolve_weights(user_file: str | None, pretrained: str, coco: Any, backbone: Any, download: bool
                    ) -> WeightsChoice:
    """Decide where a model starts from; never downloads (see the module docstring for the order).

    Args:
        user_file: ``ctx.weights`` (the ``--weights`` option) or None.
        pretrained: ``"auto"`` (the best that is available), ``"coco"`` or ``"imagenet-backbone"`` (that one,
            an error when it is neither cached nor allowed to download), ``"none"`` (scratch).
        coco, backbone: the model's torchvision weights enums (None when the model has none).
        download: the user passed ``--download``.
    """
    if pretrained not in PRETRAINED_CHOICES:
        raise ValueError(f"pretrained={pretrained!r}; expected one of {PRETRAINED_CHOICES}")
    if user_file:
        state, kind = read_weights_file(user_file)
        name = Path(user_file).name
        known = {"detector": (coco, "coco"), "backbone": (backbone, "imagenet-backbone")}[kind]
        source = known[1] if known[0] is not None and hub_checkpoint_path(known[0]).name == name else f"{kind}-file"
        return WeightsChoice(source=source, file=str(Path(user_file).expanduser().resolve()), state_dict=state,
                             kind=kind)
    if pretrained == "none":
        return WeightsChoice()
    wanted = {"auto": ("coco", "imagenet-backbone"), "coco": ("coco",),
              "imagenet-backbone": ("imagenet-backbone",)}[pretrained]
    for source in wanted:
        enum = coco if source == "coco" else backbone
        if enum is None:
            continue
        if is_cached(enum) or download:
            file = str(hub_checkpoint_path(enum))
            if source == "coco":
                return WeightsChoice(source=source, detector=enum, file=file)
            return WeightsChoice(source=source, backbone=enum, file=file)
    if pretrained != "auto":
        enum = coco if pretrained == "coco" else backbone
        if enum is None:
            raise ValueError(f"pretrained={pretrained!r}: this model has no such torchvision weights")
        raise FileNotFoundError(f"pretrained={pretrained!r}: {hub_checkpoint_path(enum)} is not in the torch hub "
                                f"cache; put it there or pass --download")
    return WeightsChoice()


def freeze_batchnorm(module: nn.Module) -> int:
    """Replace every ``BatchNorm2d`` under ``module`` by a ``FrozenBatchNorm2d`` with its statistics (in
    place, as torchvision does for pretrained backbones); returns how many were replaced."""
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            frozen.weight.copy_(child.weight.detach())
            frozen.bias.copy_(child.bias.detach())
            frozen.running_mean.copy_(child.running_mean)
            frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
            count += 1
        else:
            count += freeze_batchnorm(child)
    return count


def load_matching(module: nn.Module, state: Mapping[str, torch.Tensor], prefixes: tuple[str, ...] = ("",)
                  ) -> tuple[int, int]:
    """Copy the tensors of ``state`` whose names (after stripping the best of ``prefixes``) and shapes match
    ``module``'s; returns ``(tensors loaded, tensors in the module)``. Mismatched tensors (a class head of
    another class count) are left as initialised."""
    own = module.state_dict()
    best: dict[str, torch.Tensor] = {}
    for prefix in prefixes:
        mapped = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        fit = {k: v for k, v in mapped.items() if k in own and own[k].shape == v.shape}
        if len(fit) > len(best):
            best = fit
    module.load_state_dict(best, strict=False)
    return len(best), len(own)


def apply_user_state(model: nn.Module, choice: WeightsChoice) -> dict[str, Any]:
    """Load a user's state dict into a freshly built model; facts for the record.

    A detector's state dict is matched against the whole model (class heads of another class count are
    skipped); a backbone's against ``model.backbone.body`` (or ``model.backbone``), trying the usual
    prefixes of classification networks, and the loaded backbone's batch norms are then frozen. Fewer than
    half of the file's tensors matching is an error naming the file.
    """
    if choice.state_dict is None:
        return {}
    state = choice.state_dict
    if choice.kind == "detector":
        loaded, total = load_matching(model, state)
        frozen = 0
    else:
        target = getattr(model.backbone, "body", model.backbone)
        loaded, total = load_matching(target, state, ("", "features.", "backbone.", "body.", "backbone.body."))
        frozen = freeze_batchnorm(target) if loaded else 0
    if loaded < 0.5 * len(state):
        raise ValueError(f"--weights {choice.file}: only {loaded} of its {len(state)} tensors match this model's "
                         f"{choice.kind} ({type(model).__name__}); is it the right architecture?")
    log.info("loaded %d of %d tensors from %s", loaded, len(state), choice.file)
    return {"weights_tensors_loaded": loaded, "weights_tensors_in_model": total, "frozen_batchnorms": frozen}
