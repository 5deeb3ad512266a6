"""The report's studies over a data axis on a run folder written by hand: curves from the records, the crossover
and its interval from the saved evidence, the headline sentences and ``compare`` of two study runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchsuite.report.compare import compare_runs
from benchsuite.report.markdown import write_report
from benchsuite.report.model import build_model
from benchsuite.report.study_axes import build_axis_studies, headline
from benchsuite.results.evidence import evidence_name, save_evidence
from benchsuite.studies.axes import get_axis
from benchsuite.studies.crossover import last_change

N = 400  # test images
#: accuracies of each pipeline at 1%, 10% and 100% of the training split: hog-svm leads small, cnn large
CURVES = {"hog-svm": ("classical", [0.40, 0.50, 0.58]), "nn-l1": ("classical", [0.20, 0.25, 0.30]),
          "cnn": ("deep", [0.25, 0.45, 0.80])}


def _correct(accuracy: float, seed: int) -> np.ndarray:
    """``N`` per-image outcomes with exactly ``accuracy * N`` right, in a seeded order."""
    right = np.zeros(N, bool)
    right[: round(accuracy * N)] = True
    return np.random.default_rng(seed).permutation(right)


def _write(folder: Path, axis: str, values: str, curves: dict, splits_of=None) -> Path:
    folder.mkdir(parents=True)
    ax = get_axis(axis)
    points = ax.points(values)
    records = []
    for k, (pipeline, (family, accs)) in enumerate(curves.items()):
        for i, p in enumerate(points):
            dataset = f"cifar10.{axis}-{p.slug}"
            job = f"classification--{dataset}--{pipeline}--s0"
            (folder / "jobs" / job).mkdir(parents=True)
            save_evidence(folder / "jobs" / job / evidence_name("test"), "classification",
                          {"correct": _correct(accs[i], 10 * k + i), "truth": np.zeros(N, np.int64),
                           "predicted": np.zeros(N, np.int64)})
            study = {"axis": axis, **{f: getattr(p, f) for f in ("text", "value", "label", "slug", "position",
                                                                   "curve")},
                     "seed": 0, "base_dataset": "cifar10", "fingerprint": "fp", "work_floor": 0.25}
            records.append({
                "schema_version": 2, "run_id": folder.name, "job_id": job, "task": "classification",
                "dataset": dataset, "split": "test", "split_fingerprint": "t", "pipeline": pipeline,
                "family": family, "status": "ok", "metrics": {"accuracy": accs[i]}, "params": {}, "fit_info": {},
                "timing": {"fit_s": 10.0 * (i + 1), "images_per_s": 1000.0 / (k + 1)}, "memory": {}, "seed": 0,
                "device": "cpu", "artifacts": {"evidence": f"jobs/{job}/{evidence_name('test')}"},
                "finished_at": "2026-01-01T00:00:00", "study": study})
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "run.json").write_text(json.dumps({"run_id": folder.name, "profile": "quick", "datasets": [],
                                                 "config": {"eval_splits": ["test"]}}))
    return folder


def test_the_crossover_comes_from_the_envelopes_and_lands_in_the_headline(tmp_path):
    run_dir = _write(tmp_path / "a", "train-size", "1%,10%,100%", CURVES)
    (study,) = build_axis_studies(build_model(run_dir))
    result = study.results[""]
    # brute force on the envelopes: best classical is hog-svm at every point, best deep is cnn
    x = np.array([0.01, 0.1, 1.0])
    want, changes = last_change(x, np.array([0.25, 0.45, 0.80]) - np.array([0.40, 0.50, 0.58]), "log")
    assert changes == 1 and abs(result.crossover.position - want) < 1e-12
    assert 0.1 < result.crossover.position < 1.0 and result.crossover.lo <= result.crossover.position
    assert result.crossover.hi <= 1.0  # cnn's 22-point lead at 100% holds in every resample
    assert result.best == {"classical": ("hog-svm", "hog-svm"), "deep": ("cnn", "cnn")}
    text = headline(study)
    assert text.startswith("**train-size on cifar10** (classification, accuracy): the best deep pipeline overtakes "
                           "the best classical one at **")
    assert "`hog-svm` (classical) leads at 1%, `cnn` (deep) at 100%" in text

    paths = write_report(run_dir)
    md = paths.markdown.read_text()
    assert text in md and "## Study: train-size on cifar10 (classification)" in md
    assert "| 10% | 0.500 (" in md  # the table of points with intervals
    html = paths.html.read_text()
    assert html.count('<img alt="') == 2  # the metric and the cost against the axis


def test_no_crossover_and_a_moved_crossover_in_compare(tmp_path):
    ahead = {"hog-svm": ("classical", [0.40, 0.50, 0.58]), "cnn": ("deep", [0.60, 0.70, 0.80])}
    a = _write(tmp_path / "a", "train-size", "1%,10%,100%", CURVES)
    b = _write(tmp_path / "b", "train-size", "1%,10%,100%", ahead)
    (study,) = build_axis_studies(build_model(b))
    assert headline(study).endswith("no crossover between 1% and 100%: deep (`cnn`) ahead at every point; the "
                                    "lead changes in 0% of the bootstrap resamples.")
    text, _ = compare_runs(a, b)
    assert "- train-size on cifar10 (classification): A deep overtakes at" in text
    assert "B none (deep ahead throughout) **changed** (a crossover in one run only)" in text


def test_corruption_curves_share_the_clean_point_and_one_sentence_names_the_families(tmp_path):
    curves = {"hog-svm": ("classical", [0.6, 0.55, 0.5, 0.58, 0.57, 0.56]),
              "cnn": ("deep", [0.8, 0.4, 0.3, 0.78, 0.7, 0.65])}
    folder = _write(tmp_path / "c", "corruption", "gaussian-noise-1,gaussian-noise-5,contrast-1,contrast-5,"
                    "jpeg-1", {k: (f, v[1:]) for k, (f, v) in curves.items()})
    # the clean test split, a point of every curve
    records = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    for k, (pipeline, (_family, accs)) in enumerate(curves.items()):
        clean = dict(records[k * 5], split="test", dataset="cifar10.corruption",
                     job_id=f"classification--cifar10.corruption--{pipeline}--s0", metrics={"accuracy": accs[0]})
        clean["study"] = {**clean["study"], "text": "clean", "value": "clean", "label": "clean", "slug": "clean",
                          "position": 0.0, "curve": ""}
        (folder / "jobs" / clean["job_id"]).mkdir(parents=True)
        save_evidence(folder / "jobs" / clean["job_id"] / evidence_name("test"), "classification",
                      {"correct": _correct(accs[0], 99 + k), "truth": np.zeros(N, np.int64),
                       "predicted": np.zeros(N, np.int64)})
        clean["artifacts"] = {"evidence": f"jobs/{clean['job_id']}/{evidence_name('test')}"}
        records.append(clean)
    for r in records:
        if r["study"]["curve"]:
            r["split"] = f"test.{r['study']['slug']}"
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (study,) = build_axis_studies(build_model(folder))
    assert list(study.results) == ["gaussian-noise", "jpeg", "contrast"]  # the corruption table's order
    assert [p.text for p in study.results["contrast"].points] == ["clean", "contrast-1", "contrast-5"]
    text = headline(study)
    assert "at clean, `cnn` (deep) leads `hog-svm` (classical) by 20.0 points" in text
    assert "the best classical pipeline overtakes the best deep one under Gaussian noise at **severity" in text
    assert "deep stays ahead under JPEG compression and contrast, up to severity 5" in text


def test_the_headline_names_only_the_points_both_families_reached(tmp_path):
    # cnn's jobs at 1% and 100% failed (no record): the sentence spans 10%..30%, the points both families have
    folder = _write(tmp_path / "d", "train-size", "1%,10%,30%,100%",
                    {"hog-svm": ("classical", [0.40, 0.50, 0.55, 0.58]), "cnn": ("deep", [0.3, 0.60, 0.70, 0.9])})
    records = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    kept = [r for r in records if not (r["pipeline"] == "cnn" and r["study"]["label"] in ("1%", "100%"))]
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    (study,) = build_axis_studies(build_model(folder))
    assert [p.label for p in study.results[""].span] == ["10%", "30%"]
    assert headline(study).endswith("no crossover between 10% and 30%: deep (`cnn`) ahead at every point; the lead "
                                    "changes in 0% of the bootstrap resamples.")
