"""overfeat: shift-and-stitch against brute-force evaluation on shifted inputs, the fully convolutional network
against window-by-window evaluation, the margin from the layer stack, and a tiny fit on crop-style data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchsuite.api import Context
from benchsuite.data.detection import DetectionSample, DetectionSet
from benchsuite.errors import EmptyModelError
from pipelines.deep.overfeat import OverFeat, WindowNet, shift_and_stitch, window_margin


def _net(cells: tuple[int, int], last_pool: int) -> WindowNet:
    torch.manual_seed(0)
    net = WindowNet(cells, (4, 6, 8), 8, last_pool).eval()
    with torch.no_grad():  # running statistics away from the identity, so batch norm matters
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return net


@pytest.mark.parametrize(("last_pool", "factor"), [(2, 2), (3, 3), (2, 1)])
def test_stitched_map_equals_the_network_on_shifted_inputs(last_pool, factor):
    net = _net((3, 2), last_pool)
    x = torch.rand(1, 3, 97, 83) * 255
    s = net.stride
    with torch.no_grad():
        stitched = net(x, stitch=factor)
        shift = s // factor
        for a in range(factor):
            for b in range(factor):
                plain = net(x[:, :, a * shift:, b * shift:])  # the brute force: the whole network, shifted input
                part = stitched[:, :, a::factor, b::factor]
                h, w = part.shape[-2:]
                assert h >= 1 and w >= 1 and plain.shape[-2] >= h and plain.shape[-1] >= w
                torch.testing.assert_close(part, plain[:, :, :h, :w], rtol=1e-4, atol=1e-5)
    plain = net(x)
    assert stitched.shape[-2] >= factor * (plain.shape[-2] - 1)  # the output stride drops from s to s / f


def test_shift_and_stitch_refuses_a_factor_that_does_not_divide_the_stride():
    with pytest.raises(ValueError, match="divide"):
        shift_and_stitch(torch.zeros(1, 1, 8, 8), torch.nn.Identity(), 2, 3)


def test_dense_layers_as_convolutions_score_every_window():
    """Unit (i, j) of the map on a whole image equals the network on the crop of that window plus its margin."""
    net = _net((4, 3), 2)
    m, s = window_margin((4, 6, 8), 2), net.stride
    assert m == 15  # 4x4 stride 2, 3x3, 2x2 pool, three 3x3, the last pool: a field of 38 px on an 8 px grid
    window = (4 * s, 3 * s)
    x = torch.rand(1, 3, 90, 75) * 255
    with torch.no_grad():
        full = net(x)[0, 0]
        for i, j in [(0, 0), (1, 2), (full.shape[0] - 1, full.shape[1] - 1)]:
            crop = x[:, :, i * s:i * s + window[0] + 2 * m, j * s:j * s + window[1] + 2 * m]
            one = net(crop)
            assert one.shape[-2:] == (1, 1)
            torch.testing.assert_close(one[0, 0, 0, 0], full[i, j], rtol=1e-4, atol=1e-5)


def _crop_style_set(folder, n: int, rng: np.random.Generator) -> DetectionSet:
    """Tight crops of a bright vertical bar (the object, box = whole image) and plain noisy backgrounds."""
    from PIL import Image

    samples = []
    for i in range(n):
        path = folder / f"im{i}.png"
        if i % 2 == 0:
            img = rng.integers(0, 60, (48, 24, 3), dtype=np.uint8)
            img[:, 8:16] = 230
            boxes, labels = np.array([[0, 0, 24, 48]], np.float32), np.zeros(1, np.int64)
        else:
            img = rng.integers(0, 60, (64, 64, 3), dtype=np.uint8)
            boxes, labels = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
        Image.fromarray(img).save(path)
        flags = np.zeros(len(labels), bool)
        samples.append(DetectionSample(f"im{i}", path, img.shape[1], img.shape[0], boxes, labels, flags, flags))
    return DetectionSet(samples, ["bar"])


def test_fit_records_the_protocol_and_detects(tmp_path):
    rng = np.random.default_rng(0)
    train, val = _crop_style_set(tmp_path, 12, rng), _crop_style_set(tmp_path, 4, rng)
    det = OverFeat(**{**OverFeat.profile_params["smoke"], "base_size": 24, "min_base_size": 16})
    ctx = Context(job_dir=tmp_path)
    det.fit(train, val, ctx)
    info = ctx.info
    assert info["output_stride"] == 4 and info["network_stride"] == 8 and info["stitch_factor"] == 2
    assert info["windows"]["bar"][0] % 8 == 0 and info["windows_per_image"] > 0
    assert info["selection"]["chosen"]["pyramid_step"] == 1.2
    assert info["erf"]["layer"] == "head" and set(info["erf"]) >= {"init", "trained"}
    assert (tmp_path / "erf.npz").exists()
    out = det.detect(np.full((64, 64, 3), 30, np.uint8))
    assert out.boxes.dtype == np.float32 and out.boxes.shape[1] == 4


def test_no_boxes_is_an_empty_model(tmp_path):
    rng = np.random.default_rng(1)
    data = _crop_style_set(tmp_path, 4, rng)
    empty = DetectionSet([s for s in data if not len(s.labels)], ["bar"])
    with pytest.raises(EmptyModelError, match="no training boxes"):
        OverFeat(**OverFeat.profile_params["smoke"]).fit(empty, empty, Context())
