"""The fusion study's necks (A stages, B deepest, C FPN) and the cnn-fusion classifier's fusion layer."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch

from pipelines.deep.cnn_fusion import ConvFusionNet, LocallyConnected1x1
from pipelines.deep.fusion import NECKS, DeepestNeck, PyramidNeck, StagesNeck, make_neck

STAGE_CHANNELS = (8, 16, 24, 32)
STRIDES = (4, 8, 16, 32)


def fake_stages(h: int = 96, w: int = 128, batch: int = 2, requires_grad: bool = False) -> OrderedDict:
    """Stage outputs of a backbone at strides 4..32 (ceil division, as strided convolutions give)."""
    g = torch.Generator().manual_seed(0)
    return OrderedDict(
        (f"c{i + 2}", torch.randn(batch, c, -(-h // s), -(-w // s), generator=g).requires_grad_(requires_grad))
        for i, (c, s) in enumerate(zip(STAGE_CHANNELS, STRIDES)))


@pytest.mark.parametrize("kind", NECKS)
@pytest.mark.parametrize("size", [(96, 128), (75, 101)])
def test_every_neck_keeps_names_grids_and_equalises_width(kind, size):
    torch.manual_seed(0)
    neck = make_neck(kind, STAGE_CHANNELS, 12)
    stages = fake_stages(*size)
    out = neck(stages)
    assert list(out) == list(stages)
    assert neck.out_channels == 12
    for name, x in stages.items():
        assert out[name].shape == (2, 12, *x.shape[-2:])
        assert torch.isfinite(out[name]).all()
    # the grids are the backbone's strides: 4, 8, 16, 32 pixels per cell
    h, w = size
    assert [tuple(v.shape[-2:]) for v in out.values()] == [(-(-h // s), -(-w // s)) for s in STRIDES]


def test_unknown_neck_and_wrong_level_count_are_clear_errors():
    with pytest.raises(ValueError, match="unknown neck 'bifpn'"):
        make_neck("bifpn", STAGE_CHANNELS, 8)
    stages = fake_stages()
    stages.popitem()
    with pytest.raises(ValueError, match="expected 4 stage outputs"):
        StagesNeck(STAGE_CHANNELS, 8)(stages)


def _grads(neck: torch.nn.Module) -> dict[str, dict[str, float]]:
    """|d level / d stage| summed, for every (level, stage) pair."""
    stages = fake_stages(requires_grad=True)
    out = neck(stages)
    table: dict[str, dict[str, float]] = {}
    for level, y in out.items():
        grads = torch.autograd.grad(y.sum(), list(stages.values()), retain_graph=True, allow_unused=True,
                                    materialize_grads=True)
        table[level] = {name: float(g.abs().sum()) for name, g in zip(stages, grads)}
    return table


def test_deepest_neck_levels_depend_only_on_the_deepest_stage():
    torch.manual_seed(0)
    table = _grads(DeepestNeck(STAGE_CHANNELS, 8))
    for level, row in table.items():
        assert row["c5"] > 0, level
        assert row["c2"] == row["c3"] == row["c4"] == 0.0, (level, row)
    # and changing a shallow stage's values leaves every level unchanged
    neck = DeepestNeck(STAGE_CHANNELS, 8)
    a = fake_stages()
    b = OrderedDict((k, v if k == "c5" else torch.randn_like(v)) for k, v in a.items())
    for x, y in zip(neck(a).values(), neck(b).values()):
        torch.testing.assert_close(x, y)


def test_stages_neck_level_i_sees_stage_i_only_and_fpn_levels_see_every_deeper_stage():
    torch.manual_seed(0)
    names = [f"c{i + 2}" for i in range(4)]
    table = _grads(StagesNeck(STAGE_CHANNELS, 8))
    for i, level in enumerate(names):
        assert [table[level][n] > 0 for n in names] == [j == i for j in range(4)]
    table = _grads(PyramidNeck(STAGE_CHANNELS, 8))
    for i, level in enumerate(names):  # top-down: level i gets stage i and every deeper stage, never a shallower
        assert [table[level][n] > 0 for n in names] == [j >= i for j in range(4)], (level, table[level])


def test_fpn_neck_is_the_lin_et_al_formula():
    """Oracle: laterals (1x1), nearest 2x upsampling of the coarser merged map added, then a 3x3 conv."""
    torch.manual_seed(0)
    neck = PyramidNeck(STAGE_CHANNELS, 8)
    stages = fake_stages(64, 64)
    out = neck(stages)
    lat = [neck.inner_blocks[i](x) for i, x in enumerate(stages.values())]
    merged = [None] * 4
    merged[3] = lat[3]
    for i in (2, 1, 0):
        merged[i] = lat[i] + torch.nn.functional.interpolate(merged[i + 1], scale_factor=2, mode="nearest")
    for i, name in enumerate(stages):
        torch.testing.assert_close(out[name], neck.layer_blocks[i](merged[i]))


def test_locally_connected_layer_equals_brute_force_and_does_not_share_weights():
    torch.manual_seed(0)
    layer = LocallyConnected1x1(positions=5, in_channels=3, out_channels=2)
    with torch.no_grad():
        layer.weight.normal_()
        layer.bias.normal_()
    x = torch.randn(4, 3, 5)
    y = layer(x)
    brute = torch.empty(4, 2, 5)
    for b in range(4):
        for p in range(5):
            for o in range(2):
                brute[b, o, p] = sum(layer.weight[p, c, o] * x[b, c, p] for c in range(3)) + layer.bias[p, o]
    torch.testing.assert_close(y, brute)
    # one position's weights move that position's output and no other
    with torch.no_grad():
        layer.weight[2] += 1.0
    y2 = layer(x)
    changed = (y2 - y).abs().amax(dim=(0, 1)) > 1e-6
    assert changed.tolist() == [False, False, True, False, False]
    # a shared 1x1 convolution could not hold these weights: they differ across positions
    assert not torch.allclose(layer.weight[0], layer.weight[1])


def test_locally_connected_layer_starts_as_mean_fusion_and_checks_its_input():
    layer = LocallyConnected1x1(positions=4, in_channels=3)
    x = torch.randn(2, 3, 4)
    torch.testing.assert_close(layer(x), x.mean(1, keepdim=True))
    with pytest.raises(ValueError, match=r"expected input \(B, 3, 4\)"):
        layer(torch.randn(2, 4, 3))


def test_cnn_fusion_network_shapes_and_gradients_reach_every_side_branch():
    torch.manual_seed(0)
    net = ConvFusionNet(num_classes=10, widths=(8, 16, 24))
    x = torch.randn(3, 3, 32, 32)
    assert net.side_outputs(x).shape == (3, 3, 24)
    logits = net(x)
    assert logits.shape == (3, 10)
    logits.sum().backward()
    for side in net.sides:
        assert side[0].weight.grad is not None and side[0].weight.grad.abs().sum() > 0
    assert net.fuse.weight.grad.shape == (24, 3, 1)


def test_fusion_detector_builds_the_same_model_but_for_the_neck():
    from pipelines.deep.fusion import build_fusion_faster_rcnn

    models = {kind: build_fusion_faster_rcnn(kind, 4, None, min_size=96, max_size=128) for kind in NECKS}
    shapes = {kind: {k: tuple(v.shape) for k, v in m.state_dict().items() if not k.startswith("backbone.neck.")}
              for kind, m in models.items()}
    assert shapes["stages"] == shapes["deepest"] == shapes["fpn"]
    m = models["deepest"].eval()
    with torch.no_grad():
        out = m([torch.rand(3, 100, 140)])
    assert out[0]["boxes"].shape[1] == 4 and len(out[0]["scores"]) == len(out[0]["labels"])
    with pytest.raises(ValueError, match="num_classes"):
        build_fusion_faster_rcnn("fpn", 1)


@pytest.mark.slow
def test_fusion_ids_and_cnn_fusion_run_end_to_end_on_synthetic_data(tmp_path, cache_dir,
                                                                   assert_records_match_schema):
    from benchsuite.runner.run import RunConfig, run

    tiny = {"iterations": 2, "batch_size": 2, "min_size": 96, "max_size": 128, "warmup": 1}
    ids = ["fusion-a-stages", "fusion-b-deepest", "fusion-c-fpn"]
    params = {i: tiny for i in ids} | {"cnn-fusion": {"epochs": 1, "widths": (8, 16, 16), "batch_size": 64}}
    cfg = RunConfig(profile="smoke", tasks=["detection", "classification"], pipelines=[*ids, "cnn-fusion"],
                    out=tmp_path / "run", cache_dir=cache_dir, data_root=tmp_path / "no-data", params=params,
                    write_report=False, jobs=2)
    recs = {r["pipeline"]: r for r in run(cfg).records}
    assert set(recs) == {*ids, "cnn-fusion"}
    assert_records_match_schema(tmp_path / "run")
    for i in ids:
        r = recs[i]
        assert r["status"] == "ok", r["error"]
        assert {"ap_small", "ap_medium", "ap_large"} <= r["metrics"].keys()
        assert r["fit_info"]["fusion_variant"].startswith("ABC"[ids.index(i)] + ":")
        assert r["fit_info"]["train_steps"] == 2 and r["fit_info"]["weights"] in ("scratch", "imagenet-backbone")
    assert recs["cnn-fusion"]["status"] == "ok", recs["cnn-fusion"]["error"]
    assert 0.0 <= recs["cnn-fusion"]["metrics"]["accuracy"] <= 1.0
    assert recs["cnn-fusion"]["fit_info"]["stages_fused"] == 3
