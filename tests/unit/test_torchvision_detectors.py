"""The torchvision detector wrapper: labels, augmentation geometry, weights resolution, a training step."""

from __future__ import annotations

import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models import mobilenet_v3_large

from benchsuite.api import Budget, Context
from benchsuite.data.detection import DetectionSample, DetectionSet
from benchsuite.tasks.detection import validate_detections
from pipelines.deep import detection_weights as dw
from pipelines.deep.detection_training import (
    TrainingImages,
    from_model_labels,
    hflip,
    to_model_labels,
    zoom,
)
from pipelines.deep.torchvision_detectors import FasterRCNNMobileNetV3FPN, SSDLiteMobileNetV3

TINY = {"min_size": 96, "max_size": 128, "batch_size": 2, "warmup": 1, "scale_jitter": (1.0, 1.0),
        "model_options": {"rpn_post_nms_top_n_train": 100, "rpn_post_nms_top_n_test": 50,
                          "box_batch_size_per_image": 32}}


def boxes_from_masks(masks: np.ndarray) -> np.ndarray:
    """Oracle: the x1y1x2y2 pixel extent of each ``(H, W)`` boolean mask."""
    out = []
    for m in masks:
        rows, cols = np.nonzero(m)
        out.append([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
    return np.array(out, np.float32).reshape(-1, 4)


def object_masks(boxes: np.ndarray, h: int, w: int) -> np.ndarray:
    masks = np.zeros((len(boxes), h, w), bool)
    for m, (x1, y1, x2, y2) in zip(masks, boxes.astype(int)):
        m[y1:y2, x1:x2] = True
    return masks


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> DetectionSet:
    """Eight 96x128 images of red and blue rectangles (some images empty), with a difficult object."""
    root = tmp_path_factory.mktemp("tiny-det")
    rng = np.random.default_rng(3)
    samples = []
    for i in range(8):
        image = np.full((96, 128, 3), 90, np.uint8)
        boxes, labels = [], []
        for _ in range(i % 3):
            x, y, bw, bh = int(rng.integers(0, 80)), int(rng.integers(0, 50)), int(rng.integers(24, 44)), int(
                rng.integers(24, 44))
            k = int(rng.integers(0, 2))
            image[y:y + bh, x:x + bw] = (230, 30, 30) if k == 0 else (30, 30, 230)
            boxes.append([x, y, min(128, x + bw), min(96, y + bh)])
            labels.append(k)
        path = root / f"{i}.png"
        Image.fromarray(image).save(path)
        difficult = [j == 1 for j in range(len(labels))]
        samples.append(DetectionSample(str(i), path, 128, 96, np.array(boxes, np.float32).reshape(-1, 4), labels,
                                       difficult, [False] * len(labels)))
    return DetectionSet(samples, ("red", "blue"), "tiny/train")


@pytest.fixture()
def empty_hub(tmp_path, monkeypatch):
    """An empty torch hub cache, and a network that fails loudly if anything tries to reach it."""
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))

    def no_network(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:1]}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    yield tmp_path / "hub"
    torch.hub.set_dir(old)


def test_label_mapping_round_trip():
    labels = np.array([0, 2, 1, 0])
    model = to_model_labels(labels)
    assert model.tolist() == [1, 3, 2, 1]
    boxes = np.arange(20, dtype=np.float32).reshape(5, 4)
    b, s, lab = from_model_labels(np.append(model, 0), np.linspace(1, 0, 5, dtype=np.float32), boxes)
    assert lab.tolist() == labels.tolist() and len(b) == len(s) == 4  # the background label is dropped
    flat = np.array([[5, 5, 5, 9], [1, 1, 3, 3]], np.float32)  # zero width, as clipping at the border leaves
    assert from_model_labels(np.array([1, 1]), np.ones(2, np.float32), flat)[0].tolist() == [[1, 1, 3, 3]]


def test_hflip_and_zoom_move_boxes_with_the_pixels():
    rng = np.random.default_rng(0)
    h, w = 60, 80
    boxes = np.array([[5, 7, 30, 40], [50, 20, 79, 59], [0, 0, 10, 10]], np.float32)
    masks = object_masks(boxes, h, w)
    stack = np.ascontiguousarray(masks.transpose(1, 2, 0)).astype(np.uint8) * 255  # one object per channel
    flipped, fboxes = hflip(stack, boxes)
    np.testing.assert_array_equal(fboxes, boxes_from_masks(flipped.transpose(2, 0, 1) > 0))
    for factor in (0.6, 1.0, 1.3, 2.0):
        out, zboxes, zlabels = zoom(stack, boxes, np.arange(3), factor, rng)
        assert abs(out.shape[1] - w / factor) <= 1 and abs(out.shape[0] - h / factor) <= 1
        visible = out.transpose(2, 0, 1) == 255
        kept = [k for k in range(3) if visible[k].sum() >= 0.5 * masks[k].sum()]
        assert zlabels.tolist() == kept
        np.testing.assert_array_equal(zboxes, boxes_from_masks(visible[kept]))


def test_training_targets_leave_out_difficult_objects(tiny_set):
    data = TrainingImages(tiny_set)
    for i, s in enumerate(tiny_set):
        _, boxes, labels = data.sample(i, np.random.default_rng(0), flip=False, scale_jitter=(1.0, 1.0))
        assert len(boxes) == int((~s.difficult).sum())
        np.testing.assert_array_equal(labels, s.labels[~s.difficult] + 1)


def test_lr_schedule_warms_up_and_anneals():
    total, warm = 100, 10
    schedule = FasterRCNNMobileNetV3FPN(warmup=warm).schedule()
    f = [schedule.factor(s, total) for s in range(total + 1)]
    assert f[0] < 0.01 and f[warm] == pytest.approx(1.0) and f[total] == pytest.approx(0.0, abs=1e-9)
    assert all(a >= b for a, b in zip(f[warm:], f[warm + 1:]))
    assert FasterRCNNMobileNetV3FPN(warmup=warm, decay="step").schedule().factor(95, total) == pytest.approx(0.01)


def test_resolution_never_downloads_and_reports_scratch(empty_hub, monkeypatch, tiny_set):
    cls = FasterRCNNMobileNetV3FPN
    assert dw.resolve_weights(None, "auto", cls.coco_weights, cls.backbone_weights, download=False).source == "scratch"
    with pytest.raises(FileNotFoundError, match="--download"):
        dw.resolve_weights(None, "coco", cls.coco_weights, cls.backbone_weights, download=False)
    with dw.downloads_forbidden(False), pytest.raises(RuntimeError, match="--download"):
        torch.hub.load_state_dict_from_url(cls.coco_weights.url)
    # a cached file is used without asking; --download would allow fetching (not done here)
    cached = dw.hub_checkpoint_path(cls.backbone_weights)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"")
    choice = dw.resolve_weights(None, "auto", cls.coco_weights, cls.backbone_weights, download=False)
    assert (choice.source, choice.backbone, choice.file) == ("imagenet-backbone", cls.backbone_weights, str(cached))
    assert dw.resolve_weights(None, "auto", cls.coco_weights, None, download=True).source == "coco"
    cached.unlink()
    ctx = Context(budget=Budget("smoke"), num_threads=1)
    det = SSDLiteMobileNetV3(min_size=96, iterations=1, batch_size=2, warmup=1).fit(tiny_set, tiny_set.subset([]), ctx)
    assert ctx.info["weights"] == "scratch" and ctx.info["weights_file"] is None
    assert len(det.detect_batch([tiny_set.load_image(0)])) == 1


def test_state_dict_files_are_loaded_and_reported(tmp_path, empty_hub):
    cls = FasterRCNNMobileNetV3FPN
    torch.manual_seed(1)
    source = cls(**TINY).build_model(3, dw.WeightsChoice())
    file = tmp_path / "detector.pth"
    torch.save({"model": source.state_dict()}, file)
    choice = dw.resolve_weights(str(file), "auto", cls.coco_weights, cls.backbone_weights, download=False)
    assert (choice.source, choice.kind, choice.file) == ("detector-file", "detector", str(file.resolve()))
    torch.manual_seed(2)
    target = cls(**TINY).build_model(3, choice)
    facts = dw.apply_user_state(target, choice)
    assert facts["weights_tensors_loaded"] == len(source.state_dict())
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        assert torch.equal(a, b), name

    # a classification network's state dict is a backbone: loaded into the feature extractor, norms frozen
    backbone = mobilenet_v3_large()
    named = tmp_path / dw.hub_checkpoint_path(cls.backbone_weights).name
    torch.save(backbone.state_dict(), named)
    choice = dw.resolve_weights(str(named), "auto", cls.coco_weights, cls.backbone_weights, download=False)
    assert (choice.source, choice.kind) == ("imagenet-backbone", "backbone")
    model = cls(**TINY).build_model(3, choice)
    facts = dw.apply_user_state(model, choice)
    assert facts["frozen_batchnorms"] > 0 and facts["weights_tensors_loaded"] > 0.5 * len(backbone.state_dict())
    body = model.backbone.body.state_dict()
    assert torch.equal(body["0.0.weight"], backbone.state_dict()["features.0.0.weight"])

    with pytest.raises(ValueError, match="match"):
        bad = tmp_path / "other.pth"
        torch.save({"x.weight": torch.zeros(3, 3)}, bad)
        dw.apply_user_state(model, dw.resolve_weights(str(bad), "auto", None, None, download=False))
    with pytest.raises(FileNotFoundError, match="no such file"):
        dw.resolve_weights(str(tmp_path / "missing.pth"), "auto", None, None, download=False)


def test_training_reduces_the_loss_and_outputs_validate(tiny_set, empty_hub):
    ctx = Context(budget=Budget("smoke"), num_threads=1, seed=0)
    det = FasterRCNNMobileNetV3FPN(**{**TINY, "iterations": 12, "lr": 0.02, "hflip": False})
    det.fit(tiny_set, tiny_set.subset([0, 1, 2]), ctx)
    info = ctx.info
    assert info["weights"] == "scratch" and info["train_steps"] == 12
    assert info["train_loss_last"] < info["train_loss_first"]
    images = [tiny_set.load_image(i) for i in range(3)]
    for sample, out in zip(tiny_set, det.detect_batch(images)):
        dets, _, dropped = validate_detections(out, sample.width, sample.height, tiny_set.num_classes, sample.image_id)
        assert dropped == 0 and set(dets.labels.tolist()) <= {0, 1}
    single = det.detect(images[1])
    batched = det.detect_batch(images)[1]
    np.testing.assert_allclose(single.scores[:5], batched.scores[:5], atol=1e-4)


def test_registered_ids_and_params_round_trip():
    from benchsuite.api import check_pipeline_class

    det = FasterRCNNMobileNetV3FPN(**TINY)
    assert check_pipeline_class(FasterRCNNMobileNetV3FPN) == []
    assert det.get_params()["model_options"] == TINY["model_options"]
    assert FasterRCNNMobileNetV3FPN.id == "faster-rcnn-mbv3-fpn"


def test_anchor_sizes_option_replaces_the_rpn_anchors(empty_hub):
    sizes = ((16, 32, 64, 128, 256),) * 3
    det = FasterRCNNMobileNetV3FPN(min_size=128, max_size=160, model_options={"anchor_sizes": sizes})
    model = det.build_model(3, dw.WeightsChoice())
    gen = model.rpn.anchor_generator
    assert [tuple(int(v) for v in level) for level in gen.sizes] == [tuple(s) for s in sizes]
    # the aspect ratios and the count per location (what the RPN head predicts) are kept
    default = FasterRCNNMobileNetV3FPN(min_size=128, max_size=160).build_model(3, dw.WeightsChoice())
    assert gen.num_anchors_per_location() == default.rpn.anchor_generator.num_anchors_per_location()
    # the model's own cell anchors (x1y1x2y2 around 0): the square ones of every level are the new sizes,
    # where torchvision's defaults were 32 .. 512
    def square_sides(generator):
        out = []
        for cell in generator.cell_anchors:
            w, h = (cell[:, 2] - cell[:, 0]).round(), (cell[:, 3] - cell[:, 1]).round()
            out.append(sorted(int(v) for v in w[w == h]))
        return out

    assert square_sides(gen) == [list(s) for s in sizes]
    assert square_sides(default.rpn.anchor_generator)[0] == [32, 64, 128, 256, 512]
    model.eval()
    with torch.no_grad():
        out = model([torch.rand(3, 120, 150)])
    assert out[0]["boxes"].shape[1] == 4
    with pytest.raises(ValueError, match="anchor_sizes"):
        FasterRCNNMobileNetV3FPN(model_options={"anchor_sizes": ((16, 32),) * 3}).build_model(3, dw.WeightsChoice())
