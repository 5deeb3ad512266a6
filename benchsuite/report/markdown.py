"""``report.md``: which data the run used, then one table per task and data set."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from benchsuite.report.tables import markdown_table, task_table
from benchsuite.results.atomic import atomic_write_text
from benchsuite.results.store import RunStore


def provenance_lines(run: dict[str, Any]) -> list[str]:
    """One line per data set, saying what it is (real, canonical, synthetic) and its fingerprints."""
    lines = []
    for ds in run.get("datasets", []):
        counts = " / ".join(f"{k} {v:,}" for k, v in ds.get("split_counts", {}).items())
        origin = "SYNTHETIC stand-in" if ds.get("origin") == "synthetic" else (
            "real, canonical" if ds.get("canonical") else "real, not canonical")
        lines.append(f"- **{ds['name']}** ({origin}): {ds.get('description', '')}. Splits: {counts}. "
                     f"Fingerprint `{ds.get('fingerprint')}`, splits `{_split_fp(ds)}`. Root `{ds.get('root')}`.")
        for note in ds.get("notes", []):
            lines.append(f"  - {note}")
    return lines


def _split_fp(ds: dict[str, Any]) -> str:
    fps = ds.get("split_fingerprints", {})
    return ", ".join(f"{k} {v}" for k, v in sorted(fps.items()))


def run_lines(run: dict[str, Any]) -> list[str]:
    m = run.get("machine", {})
    gpu = m.get("gpu")
    gpu_text = f", GPU {gpu['name']} ({gpu['memory_gb']} GB)" if gpu else ", no GPU"
    git = run.get("git", {})
    commit = (git.get("commit") or "unknown")[:10] + (" (dirty)" if git.get("dirty") else "")
    v = run.get("versions", {})
    cfg = run.get("config", {})
    return [
        f"- Profile **{run.get('profile')}**, device {cfg.get('device')} "
        f"(asked: {cfg.get('device_requested')}), {cfg.get('jobs')} job(s) at a time, seeds {cfg.get('seeds')}.",
        f"- Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gb')} GB{gpu_text}.",
        f"- Versions: python {v.get('python')}, torch {v.get('torch')}, torchvision {v.get('torchvision')}, "
        f"opencv {v.get('opencv-contrib-python-headless')}, scikit-learn {v.get('scikit-learn')}, "
        f"numpy {v.get('numpy')}. Commit {commit}.",
    ]


def variant_lines(records: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in records:
        for name, vals in (r.get("metrics", {}).get("variants") or {}).items():
            acc = vals.get("accuracy")
            if acc is not None:
                lines.append(f"- `{r['pipeline']}` with {name}: accuracy {acc:.3f}")
    return lines


def failure_lines(records: list[dict[str, Any]]) -> list[str]:
    return [f"- `{r['pipeline']}` ({r['task']}, {r['dataset']}, seed {r.get('seed')}): "
            f"{r.get('failure')}: {r.get('error')}" for r in records if r.get("status") != "ok"]


def build_markdown(run_dir: Path) -> str:
    store = RunStore(run_dir)
    run = store.read_run_info()
    records = store.records()
    synthetic = any(d.get("origin") == "synthetic" for d in run.get("datasets", []))
    out = [f"# benchsuite report: run {run.get('run_id')}", ""]
    out.append("**Data**" + (" (includes SYNTHETIC stand-ins: not comparable with published numbers)"
                             if synthetic else "") + ":")
    out += provenance_lines(run)
    out += ["", "**Run**:", *run_lines(run), ""]
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(r["task"], r["dataset"], r["split"])].append(r)
    order = {"classification": 0, "detection": 1, "proposals": 2}
    for (task, dataset, split), recs in sorted(groups.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0])):
        out += [f"## {task}: {dataset}, {split} split", ""]
        header, rows = task_table(recs, task)
        out += [markdown_table(header, rows), ""]
        variants = variant_lines(recs)
        if variants:
            out += ["Variants scored beside the main prediction:", *variants, ""]
        shared = any(r.get("timing", {}).get("shared_machine") for r in recs)
        if shared:
            out += ["Timings were taken while other jobs shared the machine (`--jobs` > 1).", ""]
    failures = failure_lines(records)
    if failures:
        out += ["## Failed jobs", "", *failures, ""]
    if not records:
        out += ["No records yet.", ""]
    return "\n".join(out)


def write_markdown_report(run_dir: Path) -> Path:
    path = Path(run_dir) / "report.md"
    atomic_write_text(path, build_markdown(Path(run_dir)))
    return path
