"""The ERF tool: the theoretical field against the gradient support of positive linear networks (brute force), the
gradient map against the n-fold convolution of box kernels, the sizes against analytic Gaussians, and the probe
through the training engine into the job folder."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from benchsuite.api import Context, ErfRequest
from benchsuite.erf import (
    ErfProbe,
    FieldTracer,
    erf_stats,
    find_layer,
    fit_gaussian,
    input_gradient_map,
    mass_radius,
    theoretical_field,
)
from benchsuite.results.erf import ERF_FILE, load_erf
from benchsuite.training import Trainer


def positive(net: nn.Module) -> nn.Module:
    """Every weight positive and biases zero: a linear network whose input gradient is positive exactly on the
    theoretical receptive field (no cancellation, no max-pool routing)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.rand(p.shape, generator=g) + 0.1 if name.endswith("weight") else torch.zeros_like(p))
    return net


class Residual(nn.Module):
    def __init__(self, c: int, k: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, k, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class TwoPaths(nn.Module):
    """A strided 1x1 shortcut beside a strided 3x3 conv (ResNet's downsampling block), then a slice and a pad."""

    def __init__(self):
        super().__init__()
        self.main = nn.Conv2d(2, 2, 3, stride=2, padding=1)
        self.short = nn.Conv2d(2, 2, 1, stride=2)
        self.after = nn.Conv2d(2, 2, 3, dilation=2, padding="same")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.main(x) + self.short(x)
        y = nn.functional.pad(y[:, :, 1:, 2:], (1, 0, 2, 1))
        return self.after(y)


NETS = {
    "chain": lambda: nn.Sequential(nn.Conv2d(2, 3, 3), nn.Conv2d(3, 3, 5, stride=2, padding=1), nn.AvgPool2d(2),
                                   nn.Conv2d(3, 2, 3, dilation=2)),
    "residual": lambda: nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.AvgPool2d(3, stride=2), Residual(2, 5),
                                      nn.AvgPool2d(2), Residual(2, 3)),
    "branches": lambda: nn.Sequential(nn.Conv2d(2, 2, 3), TwoPaths()),
}


@pytest.mark.parametrize("name", sorted(NETS))
def test_theoretical_field_is_the_gradient_support_of_a_positive_linear_network(name):
    net = positive(NETS[name]()).eval()
    x = torch.zeros(1, 2, 96, 96)
    field, (h, w) = theoretical_field(net, "", x)
    assert field is not None and not field.whole
    x = x.clone().requires_grad_(True)
    out = net(x)
    (grad,) = torch.autograd.grad(out[0, :, h // 2, w // 2].sum(), x)
    ys, xs = np.nonzero(grad[0].abs().sum(0).numpy() > 0)
    support = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)  # pixel k spans [k, k + 1)
    box = field.box(h // 2, w // 2)
    assert min(box[:2]) >= 0 and max(box[2:]) <= 96, "the field must lie inside the image"
    assert support == pytest.approx(box), (support, box)


def test_a_global_pooling_gives_a_whole_field():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1))
    field, hw = theoretical_field(net, "1", torch.zeros(1, 3, 20, 20))
    assert hw == (1, 1) and field is not None and field.whole


def test_tracer_leaves_untraceable_calls_unknown():
    tracer = FieldTracer()
    x = torch.zeros(1, 1, 8, 8)
    tracer.start(x)
    with tracer:
        y = torch.nn.functional.conv_transpose2d(x, torch.ones(1, 1, 3, 3))
    assert tracer.field(y) is None


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_gradient_map_of_stacked_box_kernels_is_their_convolution(depth):
    """Luo et al.'s setting: n stacked uniform 3x3 kernels; the ERF is the n-fold convolution of the box (an
    independent oracle written with numpy)."""
    layers = [nn.Conv2d(1, 1, 3, padding=1, bias=False) for _ in range(depth)]
    net = nn.Sequential(*layers)
    with torch.no_grad():
        for conv in layers:
            conv.weight.fill_(1.0)
    erf, hw = input_gradient_map(net, str(depth - 1), torch.rand(3, 1, 21, 21))
    expected = np.ones((1, 1))
    for _ in range(depth):
        padded = np.pad(expected, 1)
        expected = sum(np.roll(np.roll(padded, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    full = np.zeros((21, 21))
    r = depth
    full[10 - r:11 + r, 10 - r:11 + r] = expected
    np.testing.assert_allclose(erf, full / full.sum(), atol=1e-9)
    assert hw == (21, 21)


def gaussian(h: int, w: int, cy: float, cx: float, sy: float, sx: float) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    return np.exp(-0.5 * ((ys - cy) / sy) ** 2 - 0.5 * ((xs - cx) / sx) ** 2)


def test_gaussian_fit_recovers_sigma_and_radius_holds_the_share():
    m = gaussian(80, 90, 41.0, 44.5, 6.0, 9.0)
    g = fit_gaussian(m)
    assert g["sigma_y"] == pytest.approx(6.0, rel=1e-3) and g["sigma_x"] == pytest.approx(9.0, rel=1e-3)
    assert g["sigma"] == pytest.approx(math.sqrt(54.0), rel=1e-3) and g["r2"] > 0.999
    iso = gaussian(101, 101, 50.5, 50.5, 7.0, 7.0)
    # a 2-D Gaussian holds share p inside radius sigma * sqrt(-2 ln(1 - p))
    for share in (0.5, 0.9):
        assert mass_radius(iso, share) == pytest.approx(7.0 * math.sqrt(-2 * math.log(1 - share)), rel=0.03)
    flat = np.ones((21, 21))
    assert fit_gaussian(flat)["r2"] < 0.5 or math.isnan(fit_gaussian(flat)["r2"])
    stats = erf_stats(iso, 0.9)
    assert stats["rf_area_share"] is None and stats["radius"] == pytest.approx(15.02, rel=0.03)


def test_find_layer_by_suffix_and_errors():
    outer = nn.Sequential(nn.Sequential(nn.Conv2d(1, 1, 1), nn.ReLU()), nn.Conv2d(1, 1, 1))
    assert find_layer(outer, "0.1")[0] == "0.1"
    wrapper = nn.ModuleDict({"net": outer})
    assert find_layer(wrapper, "0.1")[0] == "net.0.1"
    with pytest.raises(ValueError, match="not a module"):
        find_layer(wrapper, "head")
    twice = nn.ModuleDict({"a": nn.Sequential(nn.ReLU()), "b": nn.Sequential(nn.ReLU())})
    with pytest.raises(ValueError, match="ambiguous"):
        find_layer(twice, "0")


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                  nn.Conv2d(4, 4, 3, padding=1))
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x / 255.0).mean(dim=(2, 3)))


def _train(model: nn.Module, ctx: Context, probe: ErfProbe | None, steps: int = 5) -> Trainer:
    torch.manual_seed(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    trainer = Trainer(model, opt, ctx, steps=steps, name="tiny", erf=probe)
    x, y = torch.rand(16, 3, 12, 12) * 255, torch.randint(0, 2, (16,))
    model.train()
    trainer.fit(iter([(x, y)] * steps), lambda b: nn.functional.cross_entropy(model(b[0]), b[1]))
    return trainer


def test_probe_through_the_engine_saves_evidence_and_records(tmp_path):
    ctx = Context(job_dir=tmp_path)
    model = Tiny()
    probe = ErfProbe("body.3", torch.rand(6, 3, 12, 12) * 255)
    _train(model, ctx, probe)
    info = ctx.info["erf"]
    assert info["network"] == "tiny" and info["layer"] == "body.3" and info["images"] == 6 and info["split"] == "val"
    assert info["theoretical_rf"] == [5.0, 5.0] and info["file"] == ERF_FILE
    assert set(info) >= {"init", "trained"} and info["init"]["radius"] > 0
    saved = load_erf(tmp_path / ERF_FILE)
    assert set(saved.maps) == {"init", "trained"} and saved.maps["init"].shape == (12, 12)
    assert saved.maps["trained"].sum() == pytest.approx(1.0, abs=1e-5)
    assert saved.facts["trained"] == info["trained"]
    np.testing.assert_allclose(saved.rf_box, [4, 4, 9, 9])  # centre unit (6, 6) at 6.5, 5 px wide
    assert model.training, "the probe restores the model's mode"
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


def test_probe_does_not_change_training():
    a, b = Tiny(), Tiny()
    b.load_state_dict(a.state_dict())
    _train(a, Context(), None)
    _train(b, Context(), ErfProbe("body.3", torch.rand(4, 3, 12, 12) * 255))
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)


def test_declared_layer_builds_the_probe_from_val_images(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (40, 12, 12, 3), dtype=np.uint8)
    ctx = Context(job_dir=tmp_path, erf=ErfRequest("body.3", images[:32]))
    _train(Tiny(), ctx, None)
    assert ctx.info["erf"]["images"] == 32 and ctx.info["erf"]["input"] == [3, 12, 12]
    assert (tmp_path / ERF_FILE).exists()
    ctx = Context(erf=ErfRequest("body.3", None))  # no equal-sized val images: no probe, no failure
    _train(Tiny(), ctx, None)
    assert "erf" not in ctx.info


def test_probe_images_from_a_detection_split_are_object_crops(tmp_path):
    from PIL import Image

    from benchsuite.data.detection import DetectionSample, DetectionSet
    from benchsuite.erf import probe_images

    img = np.zeros((60, 80, 3), np.uint8)
    img[20:40, 30:40] = 200  # a 10 x 20 object
    Image.fromarray(img).save(tmp_path / "a.png")
    boxes = np.array([[30, 20, 40, 40]], np.float32)
    flags = np.zeros(1, bool)
    data = DetectionSet([DetectionSample("a", tmp_path / "a.png", 80, 60, boxes, np.zeros(1, np.int64), flags,
                                         flags)], ["thing"])
    x = probe_images(data, count=4, size=40, scale=0.5)
    assert x.shape == (1, 3, 40, 40) and float(x.max()) == pytest.approx(100.0)
    # the crop is twice the object's longer side (40 px) about its centre: the object fills the middle half
    assert float(x[0, 0, 10:30, 15:25].mean()) == pytest.approx(100.0) and float(x[0, 0, :8].max()) == 0.0
    assert probe_images(None) is None


def test_a_probe_that_cannot_measure_records_why_and_training_goes_on(tmp_path):
    ctx = Context(job_dir=tmp_path, erf=ErfRequest("no.such.layer", np.zeros((4, 12, 12, 3), np.uint8)))
    trainer = _train(Tiny(), ctx, None)
    assert trainer.steps_done == 5 and "not a module" in ctx.info["erf"]["error"]
    assert not (tmp_path / ERF_FILE).exists()


def test_erf_input_is_checked_with_the_declarations():
    from benchsuite.api import Classifier, check_pipeline_class

    class Bad(Classifier):
        id, family, devices = "bad", "deep", ("cpu",)
        erf_layer, erf_input = "stages.2", {"sise": 64}

    assert any("erf_input" in p for p in check_pipeline_class(Bad))


def test_report_draws_the_erf_table_and_figure_from_the_run_folder(tmp_path):
    """A record's ``fit_info["erf"]`` and its job's ``erf.npz`` become the report's ERF table row and figure."""
    from benchsuite.report.markdown import write_report
    from benchsuite.results.erf import save_erf
    from tests.unit.test_report_model import _cls, _record, write_run

    facts = {"layer": "net.stages.2", "images": 8, "split": "val", "input": [8, 3, 32, 32], "share": 0.9,
             "theoretical_rf": [21, 21], "file": ERF_FILE,
             "init": {"radius": 6.5, "sigma": 3.5, "gaussian_r2": 0.97, "rf_area_share": 0.3},
             "trained": {"radius": 8.5, "sigma": 4.5, "gaussian_r2": 0.91, "rf_area_share": 0.5}}
    measured = _record("cnn", "deep", metrics=_cls(0.7, 0.68, 0.72), fit_info={"erf": facts})
    plain = _record("hog-svm", "classical", metrics=_cls(0.5, 0.48, 0.52))
    run_dir = write_run(tmp_path / "run", [measured, plain])
    ys, xs = np.mgrid[0:32, 0:32]
    blob = np.exp(-((xs - 16) ** 2 + (ys - 16) ** 2) / 20.0)
    maps = {"init": blob / blob.sum(), "trained": blob / blob.sum()}
    save_erf(run_dir / "jobs" / measured["job_id"] / ERF_FILE, maps, [5.5, 5.5, 26.5, 26.5], facts)
    md = write_report(run_dir, html=False, plots=True).markdown.read_text()
    assert "### Effective receptive fields" in md
    (row,) = [line for line in md.splitlines() if line.startswith("| `cnn` |") and "net.stages.2" in line]
    assert "21 × 21" in row and "6.5 → 8.5" in row and "3.5 → 4.5" in row
    assert not [line for line in md.splitlines() if line.startswith("| `hog-svm` |") and "stages" in line]
    figures = list((run_dir / "report_files").glob("erf-*cnn-s0.png"))
    assert len(figures) == 1 and figures[0].stat().st_size > 0 and figures[0].name in md
