"""The common image corruptions, at severities 1 to 5: the one place that defines them and their parameters.

The families and the strength of each severity follow the CIFAR-10-C benchmark (Hendrycks and Dietterich,
"Benchmarking neural network robustness to common corruptions and perturbations", ICLR 2019), whose parameters
are given for 32 x 32 images; this is the suite's own code. Pixel values are taken as ``x = image / 255`` in
[0, 1] and the result is rounded back to uint8. Spatial parameters (blur radii and lengths, in pixels) are for a
32-pixel image and grow with the image: they are multiplied by ``min(height, width) / 32``, so a corruption of a
given severity blurs the same share of any image.

=================  ======================================  ============================================
family             what it does                            parameter at severities 1, 2, 3, 4, 5
=================  ======================================  ============================================
``gaussian-noise``  ``x + N(0, sigma^2)`` per pixel and     sigma 0.04, 0.06, 0.08, 0.09, 0.10
                    channel
``shot-noise``      ``Poisson(x * photons) / photons``      photons 500, 250, 100, 75, 50
``defocus-blur``    a disk of radius r (pixels), then a     (r, s) (0.3, 0.4), (0.4, 0.5), (0.5, 0.6),
                    Gaussian of sigma s                     (1, 0.2), (1.5, 0.1)
``motion-blur``     a one-sided line of length L pixels     (L, s) (10, 1), (10, 1.5), (10, 2), (10, 2.5),
                    in a random direction (-45 to 45        (12, 3)
                    degrees), Gaussian weights of sigma s
``jpeg``            JPEG compression at a quality           quality 80, 65, 58, 50, 40
``contrast``        ``(x - mean) * c + mean`` (the mean     c 0.75, 0.5, 0.4, 0.3, 0.15
                    over the image)
``brightness``      the HSV value channel raised by b       b 0.05, 0.1, 0.15, 0.2, 0.3
                    (hue and saturation kept)
``pixelate``        box-averaged down to a share p of the   p 0.95, 0.9, 0.85, 0.75, 0.65
                    size, then blown up by replication
=================  ======================================  ============================================

Randomness (the noises, the motion direction) comes from a generator seeded by the job's seed, the family, the
severity and a hash of the clean image's pixels: the same image is corrupted the same way in the worker that
predicts and in the parent that scores, whatever its position in the split or the profile's cap.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchsuite.ops.windows import resize_image

#: the severities every family defines
SEVERITIES = (1, 2, 3, 4, 5)
#: the image size (pixels, shorter side) the spatial parameters are given for
REFERENCE_SIZE = 32.0
#: mixed into every corruption's seed
CORRUPTION_STREAM = 0xC0_22_0F


@dataclass(frozen=True)
class Corruption:
    """One family: its name (``"gaussian-noise"``), a title, its parameter at each severity (index 0 is severity 1)
    and the function ``apply(x, parameter, scale, rngs) -> x`` on float32 images ``(N, H, W, 3)`` in [0, 1] of one
    size (``scale``: their spatial scale against the 32-pixel reference; ``rngs``: one generator per image)."""

    name: str
    title: str
    parameters: tuple[Any, ...]
    apply: Callable[[np.ndarray, Any, float, list[np.random.Generator]], np.ndarray]

    def parameter(self, severity: int) -> Any:
        return self.parameters[int(severity) - 1]


Rngs = list[np.random.Generator]


def _gaussian_noise(x: np.ndarray, sigma: float, scale: float, rngs: Rngs) -> np.ndarray:
    noise = np.stack([rng.standard_normal(x.shape[1:], dtype=np.float32) for rng in rngs])
    return x + np.float32(sigma) * noise


def _shot_noise(x: np.ndarray, photons: float, scale: float, rngs: Rngs) -> np.ndarray:
    return np.stack([rng.poisson(xi * photons) for xi, rng in zip(x, rngs)]).astype(np.float32) / np.float32(photons)


def _gaussian_kernel_1d(sigma: float) -> np.ndarray:
    radius = max(1, math.ceil(3 * sigma))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / max(sigma, 1e-6)) ** 2)
    return k / k.sum()


def _full_convolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The full 2-D convolution of two small kernels."""
    out = np.zeros((a.shape[0] + b.shape[0] - 1, a.shape[1] + b.shape[1] - 1))
    for i, j in zip(*np.nonzero(a)):
        out[i:i + b.shape[0], j:j + b.shape[1]] += a[i, j] * b
    return out


def _filter(x: np.ndarray, kernels: list[np.ndarray]) -> np.ndarray:
    """Each image of ``x`` convolved with its kernel (one kernel: the same for all), the border mirrored."""
    import cv2

    out = np.empty_like(x)
    for i in range(len(x)):
        k = kernels[i if len(kernels) > 1 else 0].astype(np.float32)
        out[i] = cv2.filter2D(x[i], -1, k, borderType=cv2.BORDER_REFLECT_101).reshape(x.shape[1:])
    return out


def _defocus_blur(x: np.ndarray, radius_sigma: tuple[float, float], scale: float, rngs: Rngs) -> np.ndarray:
    radius, sigma = radius_sigma[0] * scale, radius_sigma[1] * scale
    r = math.ceil(radius)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    g = _gaussian_kernel_1d(sigma)
    return _filter(x, [_full_convolve(disk / disk.sum(), np.outer(g, g))])


def motion_kernel(length: float, sigma: float, angle_deg: float) -> np.ndarray:
    """A one-sided line of ``length`` pixels at ``angle_deg`` (counter-clockwise from the x axis) with Gaussian
    weights of ``sigma`` pixels along it, normalised: each pixel becomes the weighted mean of the pixels behind
    it along the motion."""
    angle = math.radians(angle_deg)
    r = math.ceil(length)
    steps = np.arange(0, r + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (steps / max(sigma, 1e-6)) ** 2)
    kernel = np.zeros((2 * r + 1, 2 * r + 1))
    cols = np.rint(r + steps * math.cos(angle)).astype(int)
    rows = np.rint(r - steps * math.sin(angle)).astype(int)
    np.add.at(kernel, (rows, cols), weights)
    return kernel / kernel.sum()


def _motion_blur(x: np.ndarray, length_sigma: tuple[float, float], scale: float, rngs: Rngs) -> np.ndarray:
    length, sigma = length_sigma[0] * scale, length_sigma[1] * scale
    return _filter(x, [motion_kernel(length, sigma, rng.uniform(-45.0, 45.0)) for rng in rngs])


def _jpeg(x: np.ndarray, quality: int, scale: float, rngs: Rngs) -> np.ndarray:
    import cv2

    out = np.empty_like(x)
    for i, image in enumerate(_to_uint8(x)):
        ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY,
                                                                                    int(quality)])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        out[i] = cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.float32) / 255.0
    return out


def _contrast(x: np.ndarray, c: float, scale: float, rngs: Rngs) -> np.ndarray:
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return (x - mean) * np.float32(c) + mean


def _brightness(x: np.ndarray, b: float, scale: float, rngs: Rngs) -> np.ndarray:
    value = x.max(axis=3, keepdims=True)  # HSV's V; H and S stay when every channel is scaled by V' / V
    raised = np.minimum(value + np.float32(b), np.float32(1.0))
    ratio = np.divide(raised, value, out=np.zeros_like(value), where=value > 0)
    return np.where(value > 0, x * ratio, raised)


def _pixelate(x: np.ndarray, share: float, scale: float, rngs: Rngs) -> np.ndarray:
    import cv2

    n, h, w = x.shape[:3]
    small = (max(1, int(h * share)), max(1, int(w * share)))
    out = np.empty_like(x)
    for i in range(n):
        out[i] = cv2.resize(resize_image(x[i], small), (w, h), interpolation=cv2.INTER_NEAREST).reshape(h, w, -1)
    return out


#: the families, by name, in the report's order
CORRUPTIONS: dict[str, Corruption] = {c.name: c for c in (
    Corruption("gaussian-noise", "Gaussian noise", (0.04, 0.06, 0.08, 0.09, 0.10), _gaussian_noise),
    Corruption("shot-noise", "shot noise", (500, 250, 100, 75, 50), _shot_noise),
    Corruption("defocus-blur", "defocus blur", ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1)),
               _defocus_blur),
    Corruption("motion-blur", "motion blur", ((10, 1.0), (10, 1.5), (10, 2.0), (10, 2.5), (12, 3.0)), _motion_blur),
    Corruption("jpeg", "JPEG compression", (80, 65, 58, 50, 40), _jpeg),
    Corruption("contrast", "contrast", (0.75, 0.5, 0.4, 0.3, 0.15), _contrast),
    Corruption("brightness", "brightness", (0.05, 0.1, 0.15, 0.2, 0.3), _brightness),
    Corruption("pixelate", "pixelation", (0.95, 0.9, 0.85, 0.75, 0.65), _pixelate),
)}


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * np.float32(255.0)), 0, 255).astype(np.uint8)


def image_key(image: np.ndarray) -> int:
    """A 32-bit hash of an image's pixels (and shape): where its corruption's random numbers come from."""
    a = np.ascontiguousarray(image)
    return zlib.crc32(a.tobytes(), zlib.crc32(repr(a.shape).encode()))


def corrupt_batch(images: np.ndarray, family: str, severity: int, seed: int) -> np.ndarray:
    """``images`` (``(N, H, W, 3)`` uint8 RGB, one size) with ``family`` at ``severity`` (1 to 5), each image
    deterministic in its pixels, ``family``, ``severity`` and ``seed`` (not in its neighbours or position)."""
    spec = CORRUPTIONS[family]
    if int(severity) not in SEVERITIES:
        raise ValueError(f"severity {severity!r}; expected one of {SEVERITIES}")
    if not len(images):
        return images.copy()
    index = list(CORRUPTIONS).index(family)
    rngs = [np.random.default_rng([CORRUPTION_STREAM, int(seed), index, int(severity), image_key(im)])
            for im in images]
    scale = min(images.shape[1:3]) / REFERENCE_SIZE
    x = images.astype(np.float32) / np.float32(255.0)
    out = spec.apply(x, spec.parameter(severity), scale, rngs)
    return _to_uint8(np.asarray(out, np.float32).reshape(images.shape))


def corrupt(image: np.ndarray, family: str, severity: int, seed: int) -> np.ndarray:
    """One ``(H, W, 3)`` uint8 RGB image corrupted as :func:`corrupt_batch` corrupts it in any batch."""
    return corrupt_batch(image[None], family, severity, seed)[0]
