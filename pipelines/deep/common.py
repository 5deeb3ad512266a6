"""Device and precision helpers shared by the deep pipelines (one place for every torch model)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn


def amp_dtype(device: str) -> torch.dtype | None:
    """The mixed-precision dtype for ``device``, or None for plain float32.

    CUDA: bfloat16 where the GPU supports it, else float16. CPU: bfloat16 only where oneDNN has native
    bf16 kernels (AVX-512 BF16 or AMX); elsewhere bf16 is emulated and slower than float32.
    """
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    try:
        native = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):
        native = False
    return torch.bfloat16 if native else None


@contextlib.contextmanager
def autocast(device: str, dtype: torch.dtype | None) -> Iterator[None]:
    if dtype is None:
        yield
        return
    with torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=dtype):
        yield


def prepare_device(device: str) -> torch.device:
    """A torch device, with cuDNN autotuning switched on for CUDA."""
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    return torch.device(device)


def describe_weights(source: str, path: str | None = None) -> dict[str, str | None]:
    """The record's note on where a model's starting weights came from."""
    return {"weights": source, "weights_path": path}


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Optimizer parameter groups: weight decay on weight matrices and kernels, none on biases and norms."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
