"""Device choice (``auto | cpu | cuda``) and what the record says about the device."""

from __future__ import annotations

from typing import Any

from benchsuite.errors import ConfigError

CHOICES = ("auto", "cpu", "cuda")


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def resolve_device(requested: str) -> str:
    """``auto`` becomes ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda`` without a GPU is an error."""
    if requested not in CHOICES:
        raise ConfigError(f"unknown device {requested!r}; expected one of: {', '.join(CHOICES)}")
    if requested == "auto":
        return "cuda" if cuda_available() else "cpu"
    if requested == "cuda" and not cuda_available():
        raise ConfigError("--device cuda was asked for, but torch sees no CUDA device; use --device cpu or auto")
    return requested


def device_for_pipeline(resolved: str, supported: tuple[str, ...]) -> str:
    """The device a pipeline runs on: the run's device if it supports it, else the CPU."""
    return resolved if resolved in supported else "cpu"


def gpu_info() -> dict[str, Any] | None:
    """Name, memory and CUDA/cuDNN versions of the visible GPU, or None."""
    if not cuda_available():
        return None
    import torch

    props = torch.cuda.get_device_properties(0)
    return {
        "name": props.name,
        "memory_gb": round(props.total_memory / 2**30, 1),
        "count": torch.cuda.device_count(),
        "capability": f"{props.major}.{props.minor}",
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
    }


def synchronize(device: str) -> None:
    """Wait for queued GPU work so that a host clock reading covers it."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
