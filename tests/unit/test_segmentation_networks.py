"""The segmentation networks: output shapes for any input size, shared FCN parameter names, the bilinear
up-convolution, and that each network learns one synthetic image in a few dozen CPU steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchsuite.metrics.segmentation import evaluate_segmentation
from pipelines.deep.segmentation import NETWORKS, build_network
from pipelines.deep.segmentation.layers import BilinearUpsample2x

TINY = {
    "fcn-32s": {"widths": (8, 8, 16, 16, 16), "fc_width": 32},
    "fcn-16s": {"widths": (8, 8, 16, 16, 16), "fc_width": 32},
    "fcn-8s": {"widths": (8, 8, 16, 16, 16), "fc_width": 32},
    "unet": {"widths": (8, 16, 32)},
    "dilated": {"widths": (8, 8, 16, 16, 16, 16)},
}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("shape", [(1, 3, 5, 7), (2, 3, 37, 53), (1, 3, 64, 33)])
def test_scores_have_the_input_size(name, shape):
    torch.manual_seed(0)
    net = build_network(name, 4, **TINY[name]).eval()
    with torch.no_grad():
        y = net(torch.randn(*shape))
    assert y.shape == (shape[0], 4, *shape[2:]) and torch.isfinite(y).all()


def test_fcn_variants_share_the_backbone_and_add_only_skips():
    keys = {v: set(build_network(f"fcn-{v}", 3).state_dict()) for v in ("32s", "16s", "8s")}
    backbone = {k for k in keys["32s"] if k.startswith("backbone.")}
    for v in ("16s", "8s"):
        assert {k for k in keys[v] if k.startswith("backbone.")} == backbone
    assert keys["32s"] < keys["16s"] < keys["8s"]
    assert {k.split(".")[0] for k in keys["16s"] - keys["32s"]} == {"upscore2", "score_pool4"}
    assert {k.split(".")[0] for k in keys["8s"] - keys["16s"]} == {"upscore_pool4", "score_pool3"}
    # staged training: a 16s starts from a trained 32s, its new skip scoring at zero
    torch.manual_seed(0)
    trained = build_network("fcn-32s", 3)
    net16 = build_network("fcn-16s", 3)
    missing = net16.load_state_dict(trained.state_dict(), strict=False).missing_keys
    assert {k.split(".")[0] for k in missing} == {"upscore2", "score_pool4"}
    assert float(net16.score_pool4.weight.abs().sum()) == 0.0


def test_bilinear_up_convolution_starts_as_bilinear_interpolation():
    up = BilinearUpsample2x(2)
    x = torch.randn(1, 2, 6, 7)
    y = up(x)
    assert y.shape == (1, 2, 12, 14)
    want = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    # equal away from the border, where the up-convolution sees zero padding instead of replicated values
    torch.testing.assert_close(y[..., 1:-1, 1:-1], want[..., 1:-1, 1:-1], atol=1e-6, rtol=1e-6)


def one_image(h: int = 48, w: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """A noisy image of a disk (class 1, radius 14) and a 12-px bar (class 2) on background (class 0)."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    target = torch.zeros(h, w, dtype=torch.long)
    target[(yy - 24) ** 2 + (xx - 20) ** 2 < 14**2] = 1
    target[4:44, 44:56] = 2
    colours = torch.tensor([[0.0, 0.0, 0.0], [1.0, -1.0, 0.0], [-1.0, 0.5, 1.0]])
    image = torch.randn(3, h, w, generator=g) * 0.3 + colours[target].permute(2, 0, 1)
    return image[None], target[None]


def overfit(name: str, steps: int = 40) -> tuple[float, float, float]:
    """``(first loss, last loss, mean IU in eval mode)`` after ``steps`` Adam steps on :func:`one_image`."""
    x, t = one_image()
    torch.manual_seed(0)
    net = build_network(name, 3, **TINY[name])
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(net(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    with torch.no_grad():
        pred = net.eval()(x).argmax(1)
    block, _ = evaluate_segmentation([t[0].numpy().astype(np.uint8)], [pred[0].numpy().astype(np.uint8)],
                                     ["background", "disk", "bar"])
    return losses[0], losses[-1], float(block["mean_iou"])


@pytest.mark.parametrize("name", ["fcn-8s", "unet", "dilated"])
def test_network_learns_one_image(name):
    first, last, miou = overfit(name)
    assert last < 0.2 * first
    assert miou > 0.85


def test_fcn_skips_matter_on_objects_smaller_than_the_stride():
    """On a 48 x 64 image FCN-32s scores a 2 x 2 grid: it cannot draw a 28-px disk or a 12-px bar; each skip helps."""
    results = {v: overfit(f"fcn-{v}") for v in ("32s", "16s", "8s")}
    assert results["32s"][1] < results["32s"][0]  # it learns what it can
    assert results["32s"][2] < results["16s"][2] < results["8s"][2]
