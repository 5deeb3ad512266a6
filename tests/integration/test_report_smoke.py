"""The report of a real smoke run: intervals from saved predictions, compare on seeds and on a degraded
pipeline, and the HTML page in headless Chromium (no console errors, every image loaded, a screenshot)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from benchsuite.report.compare import compare_runs
from benchsuite.report.model import build_model
from benchsuite.runner.run import RunConfig, run

PIPELINES = ["nn-l1", "cnn", "mean-box", "sliding-boxes"]
#: a one-epoch, narrow cnn: a deep classifier in a few seconds (its accuracy does not matter here)
PARAMS = {"cnn": {"epochs": 1, "widths": [8, 16, 32]}}
CHECK_HEAD = """<script>
window.__bsErrors = [];
window.addEventListener('error', function (e) {
  window.__bsErrors.push(String(e.message || (e.target && (e.target.src || e.target.href)) || 'error'));
}, true);
var __bsConsoleError = console.error;
console.error = function () {
  window.__bsErrors.push(Array.from(arguments).join(' '));
  __bsConsoleError.apply(console, arguments);
};
</script>"""
CHECK_TAIL = """<script>
window.addEventListener('load', function () {
  var imgs = Array.from(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  var d = document.createElement('div');
  d.id = 'bs-check';
  d.setAttribute('data-images', String(imgs.length));
  d.setAttribute('data-broken', String(bad.length));
  d.setAttribute('data-errors', window.__bsErrors.join(' || '));
  document.body.appendChild(d);
});
</script>"""


def _smoke(out: Path, cache_dir: Path, seed: int, pipelines: list[str]) -> Path:
    cfg = RunConfig(profile="smoke", out=out, cache_dir=cache_dir, data_root=out.parent / "no-data",
                    pipelines=pipelines, seeds=[seed], params={k: v for k, v in PARAMS.items() if k in pipelines})
    return run(cfg).run_dir


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory, cache_dir) -> tuple[Path, Path]:
    """A smoke run (seed 0) and a second one of the seed-dependent classifiers with seed 1, once per session."""
    root = tmp_path_factory.mktemp("report-smoke")
    return (_smoke(root / "seed0", cache_dir, 0, PIPELINES),
            _smoke(root / "seed1", cache_dir, 1, ["nn-l1", "cnn"]))


@pytest.mark.slow
def test_smoke_report_has_intervals_plots_and_gallery(smoke_runs):
    run_dir = smoke_runs[0]
    model = build_model(run_dir)
    rows = {(r.task, r.pipeline): r for r in model.rows()}
    for key, metric in ((("classification", "nn-l1"), "accuracy"), (("detection", "mean-box"), "map50"),
                        (("proposals", "sliding-boxes"), "recall_at_1000_iou50")):
        est = rows[key].estimates[metric]
        assert est.has_interval and est.lo <= est.value <= est.hi, (key, est)
    # the bootstrap over per-image correctness agrees with the record's binomial interval
    rec_ci = rows[("classification", "nn-l1")].record["metrics"]["accuracy_ci95"]
    est = rows[("classification", "nn-l1")].estimates["accuracy"]
    assert abs(est.lo - rec_ci[0]) < 0.02 and abs(est.hi - rec_ci[1]) < 0.02
    md = (run_dir / "report.md").read_text()
    assert "SYNTHETIC DATA" in "\n".join(md.splitlines()[:4])
    assert "best deep `cnn`" in md and "Gallery" in md
    names = {p.name for p in (run_dir / "report_files").glob("*.png")}
    assert {"classification-cifar10-test-confusion.png", "detection-synthetic-voc-test-pr.png",
            "proposals-synthetic-voc-test-recall.png", "detection-synthetic-voc-test-gallery-mean-box.png"} <= names


@pytest.mark.slow
def test_compare_flags_a_degraded_pipeline_and_not_a_seed_change(smoke_runs, tmp_path):
    from benchsuite.data.datasets import open_dataset
    from benchsuite.tasks.classification import ClassificationTask

    run_a, run_b = smoke_runs
    _, seed_changes = compare_runs(run_a, run_b)
    quality = [c for c in seed_changes if any(f.startswith(("worse", "better")) for f in c.flags)]
    assert quality == [], [(c.pipeline, c.flags) for c in quality]

    # copy seed 0, make its best classifier wrong on 80% of the images it got right, and score it again
    bad = tmp_path / "degraded"
    shutil.copytree(run_a, bad)
    lines = (bad / "records.jsonl").read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    target = max((r for r in recs if r["task"] == "classification"), key=lambda r: r["metrics"]["accuracy"])
    assert target["metrics"]["accuracy"] > 0.15  # room for a clear drop on 300 images
    job = json.loads((bad / "jobs" / target["job_id"] / "job.json").read_text())
    ds = open_dataset(job["dataset_spec"], Path(job["data_root"]), Path(job["cache_dir"]), force_synthetic=True)
    truth = ds.load("test", job["budget"]["max_test_images"]).labels
    pred_path = bad / "jobs" / target["job_id"] / "predictions-test.npz"
    pred = dict(np.load(pred_path))
    right = np.flatnonzero(pred["labels"] == truth)
    flip = np.random.default_rng(0).choice(right, int(0.8 * len(right)), replace=False)
    pred["labels"][flip] = (truth[flip] + 1) % len(ds.info.classes)
    np.savez_compressed(pred_path, **pred)
    from benchsuite.api import Budget

    metrics, _ = ClassificationTask().evaluate(ds, "test", Budget(**job["budget"]), pred_path, pred_path.parent)
    target.update(metrics=metrics, finished_at="degraded")
    (bad / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))

    _, changes = compare_runs(run_a, bad)
    flagged = {c.pipeline: c.flags for c in changes if any(f.startswith(("worse", "better")) for f in c.flags)}
    assert list(flagged) == [target["pipeline"]] and flagged[target["pipeline"]][0].startswith("worse")
    from benchsuite.cli import main

    assert main(["compare", str(run_a), str(bad), "--fail-on-regression", "--out", str(tmp_path / "c.md")]) == 1


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    if shutil.which("apt-get") is None:
        return None
    try:
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], capture_output=True, timeout=900, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def chromium() -> str:
    path = _chromium()
    if path is None:
        pytest.skip("no Chromium, and `apt-get install -y chromium` did not provide one")
    return path


def _browse(chromium: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--disable-extensions", "--hide-scrollbars"]
    return subprocess.run(base + list(args), capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_report_html_opens_in_headless_chromium(smoke_runs, chromium):
    run_dir = smoke_runs[0]
    page = run_dir / "report.html"
    text = page.read_text()
    check = run_dir / "report-check.html"
    check.write_text(text.replace("<head>", "<head>" + CHECK_HEAD, 1).replace("</body>", CHECK_TAIL + "</body>", 1))
    dom = _browse(chromium, "--virtual-time-budget=10000", "--dump-dom", check.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    marker = re.search(r'<div id="bs-check" data-images="(\d+)" data-broken="(\d+)" data-errors="([^"]*)"',
                       dom.stdout)
    assert marker, dom.stdout[-2000:]
    images, broken, errors = int(marker[1]), int(marker[2]), marker[3]
    assert images == text.count("<img ") and images >= 8
    assert broken == 0 and errors == ""

    shot = run_dir / "report-screenshot.png"
    res = _browse(chromium, "--enable-logging=stderr", "--v=0", "--window-size=1360,4200",
                  f"--screenshot={shot}", page.as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    console = [ln for ln in res.stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln
               or "Failed to load resource" in ln]
    assert console == []
    assert shot.is_file() and shot.stat().st_size > 20_000
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size[0] >= 1300 and np.asarray(im.convert("L")).std() > 10  # not a blank page


@pytest.mark.slow
def test_smoke_records_match_the_schema(smoke_runs, assert_records_match_schema):
    """Every record of the smoke runs (a classifier choosing k on val, a deep classifier, detection and proposal
    references) carries the schema version and validates; summary.csv has one type per column."""
    for run_dir in smoke_runs:
        assert_records_match_schema(run_dir)
    nn = next(json.loads(line) for line in (smoke_runs[0] / "records.jsonl").read_text().splitlines()
              if json.loads(line)["pipeline"] == "nn-l1")
    sel = nn["fit_info"]["selection"]
    assert sel["metric"] == "val_accuracy" and [g["k"] for g in sel["grid"]] == [1, 3]  # the smoke k_values
    assert sel["chosen"] == {"k": nn["fit_info"]["k"]} and sel["score"] == max(sel["scores"])
