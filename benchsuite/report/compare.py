"""Compare two runs: one row per (task, data set, split, pipeline), with deltas and flags.

A quality change (accuracy, mAP50, recall) is flagged only when the two 95% bootstrap intervals over test
images do not overlap (a conservative test: a change inside the sampling noise of the test set is not
reported). A timing change is flagged only beyond ``time_ratio`` (fit time, or time per image) and only
when the slower side takes at least ``min_seconds``, so that millisecond jobs do not flap. A pipeline that
succeeded in A and failed in B is a regression. Seeds are averaged within each run, so two runs with
different seeds compare pipeline by pipeline.

Some changes are not called at all, and the flag says why (``force=True``, ``--force``, calls them anyway):

- a timing change between runs on different machines (CPU model, cores or GPU differ), or where either
  side's record was timed under contention (``timing.contended``): the time moved, but not because of the code;
- a quality change where either side's record did less work than its profile asked (``shortened``).

Two more notes, on what the same work gives twice (``Change.reproducibility``):

- **reruns**: when both runs ran the same commit (clean), profile, data, seed and parameters on the same kind of
  machine, every metric should be the same; the comparison says "identical rerun" or how far it moved. This is
  where a record's ``determinism.exact_reruns: "not checked"`` gets checked.
- **across CPU types**: when the two CPU models differ, a difference of the primary metric is set against the
  pipeline's measured cross-CPU drift (the records' ``determinism.cpu_drift``, from ``Pipeline.cpu_drift``):
  "within the cross-CPU drift", "beyond" it, or "not measured".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from benchsuite.report.document import fmt_interval, fmt_metric, fmt_ratio
from benchsuite.report.markup import code, lit
from benchsuite.report.model import Estimate, Group, ReportModel, Row, Summary, build_model, intervals_apart, summarise
from benchsuite.report.study_axes import compare_studies
from benchsuite.report.tables import fmt_auto, markdown_table

DEFAULT_TIME_RATIO = 1.5
DEFAULT_MIN_SECONDS = 0.5


@dataclass
class Change:
    task: str
    dataset: str
    split: str
    pipeline: str
    family: str
    metric_title: str
    a: Summary | None
    b: Summary | None
    status_a: str
    status_b: str
    same_data: bool = True
    flags: list[str] = field(default_factory=list)
    reproducibility: str = ""  # a rerun's identity, or a change set against the cross-CPU drift ('' when neither)

    @property
    def regression(self) -> bool:
        return any(f.startswith(("worse", "slower", "now failing")) for f in self.flags)

    @property
    def delta(self) -> float | None:
        if self.a and self.b and self.a.primary.value is not None and self.b.primary.value is not None:
            return self.b.primary.value - self.a.primary.value
        return None


def _status(rows: list[Row]) -> str:
    if not rows:
        return "absent"
    return "ok" if any(r.ok for r in rows) else "failed"


def _time_flag(what: str, a: float | None, b: float | None, ratio: float, min_seconds: float) -> str | None:
    """``what`` seconds in A and B (larger is slower)."""
    if a is None or b is None or a <= 0 or b <= 0 or max(a, b) < min_seconds:
        return None
    if b / a > ratio:
        return f"slower {what} ×{b / a:.2g}"
    if a / b > ratio:
        return f"faster {what} ×{a / b:.2g}"
    return None


def _predict_seconds(rows: list[Row]) -> float | None:
    """Seconds to predict the whole split (the seed mean)."""
    vals = [r.record.get("timing", {}).get("predict_s") for r in rows if r.ok]
    vals = [v for v in vals if isinstance(v, (int, float))]
    return sum(vals) / len(vals) if vals else None


def machine_kind(model: ReportModel) -> tuple[str, int | None, str | None]:
    """``(CPU model, cores, GPU name)`` of a run's machine: timings compare only within one kind."""
    m = model.run.get("machine") or {}
    gpu = m.get("gpu")
    return (str(m.get("cpu")), m.get("cores"), gpu.get("name") if isinstance(gpu, dict) else None)


def _describe_kind(kind: tuple[str, int | None, str | None]) -> str:
    return f"{kind[0]}, {kind[1]} cores, " + (f"GPU {kind[2]}" if kind[2] else "no GPU")


def _timing_refusal(pa: list[Row], pb: list[Row], same_machine: bool) -> str | None:
    """Why a timing change between these rows must not be called a change (None: it may)."""
    if not same_machine:
        return "timing not compared: different machines"
    sides = [name for name, rows in (("A", pa), ("B", pb)) if any(r.ok and r.contended for r in rows)]
    if sides:
        return f"timing not compared: timed under contention in {' and '.join(sides)}"
    return None


def same_code(a: ReportModel, b: ReportModel) -> bool:
    """Whether two runs ran the same clean commit under the same profile (what makes them reruns)."""
    ga, gb = a.run.get("git") or {}, b.run.get("git") or {}
    return (bool(ga.get("commit")) and ga.get("commit") == gb.get("commit") and not ga.get("dirty")
            and not gb.get("dirty") and a.run.get("profile") == b.run.get("profile"))


def _rerun_note(pa: list[Row], pb: list[Row], metric: str) -> str:
    """'identical rerun' when every seed both runs share gives the same metrics with the same parameters, else
    how far the primary metric moved ('' when no seed is shared)."""
    by_seed_b = {r.seed: r for r in pb if r.ok}
    pairs = [(ra, by_seed_b[ra.seed]) for ra in pa if ra.ok and ra.seed in by_seed_b]
    pairs = [(x, y) for x, y in pairs if x.record.get("params") == y.record.get("params")]
    if not pairs:
        return ""
    moved = [(x.seed, (x.record.get("metrics") or {}).get(metric), (y.record.get("metrics") or {}).get(metric))
             for x, y in pairs if x.record.get("metrics") != y.record.get("metrics")]
    if not moved:
        return f"identical rerun ({len(pairs)} seed(s): same metrics)"
    seed, va, vb = moved[0]
    return f"rerun differs: seed {seed} {metric} {va} vs {vb} (same code, data and parameters on one machine kind)"


def _drift_note(ch: Change, pa: list[Row], pb: list[Row], points: bool) -> str:
    """A primary-metric difference between two CPU types set against the pipeline's measured drift."""
    if ch.delta is None or ch.delta == 0:
        return "same on both CPU types" if ch.delta == 0 else ""
    drifts = {(r.record.get("determinism") or {}).get("cpu_drift") for r in pa + pb if r.ok}
    known = [d for d in drifts if isinstance(d, (int, float))]
    shown = (lambda v: f"{v * 100:.2f} pts") if points else (lambda v: f"{v:.3g}")
    if not known:
        return f"Δ {shown(abs(ch.delta))} between CPU types: cross-CPU drift not measured for this pipeline"
    drift = max(known)
    if abs(ch.delta) <= drift + 1e-12:
        return f"within the cross-CPU drift (Δ {shown(abs(ch.delta))} ≤ {shown(drift)} measured between CPU types)"
    return (f"beyond the cross-CPU drift (Δ {shown(abs(ch.delta))} > {shown(drift)} measured between CPU types)"
            if drift else f"not expected: identical on every CPU type, yet Δ {shown(abs(ch.delta))}")


def compare_models(a: ReportModel, b: ReportModel, time_ratio: float = DEFAULT_TIME_RATIO,
                   min_seconds: float = DEFAULT_MIN_SECONDS, force: bool = False) -> list[Change]:
    same_machine = machine_kind(a) == machine_kind(b)
    other_cpu = machine_kind(a)[0] != machine_kind(b)[0]
    reruns = same_machine and same_code(a, b)
    groups_a: dict[tuple[str, str, str], Group] = {g.key: g for g in a.groups}
    groups_b: dict[tuple[str, str, str], Group] = {g.key: g for g in b.groups}
    out = []
    for key in sorted(set(groups_a) | set(groups_b)):
        ga, gb = groups_a.get(key), groups_b.get(key)
        group = ga or gb
        metric, higher = group.metric, group.higher_is_better  # the task's primary metric and its direction
        rows_a = ga.rows if ga else []
        rows_b = gb.rows if gb else []
        sa = {s.pipeline: s for s in summarise(rows_a, metric, higher)}
        sb = {s.pipeline: s for s in summarise(rows_b, metric, higher)}
        fps_a = {r.record.get("split_fingerprint") for r in rows_a}
        fps_b = {r.record.get("split_fingerprint") for r in rows_b}
        same = not (fps_a and fps_b) or fps_a == fps_b
        for pipeline in sorted({r.pipeline for r in rows_a} | {r.pipeline for r in rows_b}):
            pa = [r for r in rows_a if r.pipeline == pipeline]
            pb = [r for r in rows_b if r.pipeline == pipeline]
            family = (pa or pb)[0].family
            ch = Change(*key, pipeline, family, (ga or gb).metric_title, sa.get(pipeline), sb.get(pipeline),
                        _status(pa), _status(pb), same)
            if ch.status_a == "ok" and ch.status_b == "failed":
                ch.flags.append("now failing: " + "; ".join(f"{r.failure}" for r in pb if not r.ok))
            elif ch.status_a == "failed" and ch.status_b == "ok":
                ch.flags.append("fixed (failed in A)")
            if ch.a and ch.b:
                cut = [name for name, su in (("A", ch.a), ("B", ch.b)) if su.shortened]
                if not same:
                    ch.flags.append("different data (split fingerprints differ): not compared")
                elif cut and not force:
                    ch.flags.append(f"quality not compared: shortened in {' and '.join(cut)} (less work than the "
                                    f"profile asked)")
                elif intervals_apart(ch.a.primary, ch.b.primary):
                    improved = (ch.delta > 0) == higher
                    size = f"{ch.delta * 100:+.1f} pts" if group.metric_points else f"{ch.delta:+.3g}"
                    ch.flags.append(("better " if improved else "worse ") + size)
                refusal = None if force else _timing_refusal(pa, pb, same_machine)
                timing_flags = [f for what, xa, xb in (("fit", ch.a.fit_s, ch.b.fit_s),
                                                       ("prediction", _predict_seconds(pa), _predict_seconds(pb)))
                                if (f := _time_flag(what, xa, xb, time_ratio, min_seconds))]
                if timing_flags and refusal:
                    ch.flags.append(f"{refusal} (would be: {', '.join(timing_flags)})")
                else:
                    ch.flags += timing_flags
                if same and reruns:
                    ch.reproducibility = _rerun_note(pa, pb, metric)
                elif same and other_cpu:
                    ch.reproducibility = _drift_note(ch, pa, pb, group.metric_points)
            out.append(ch)
    return out


def _est(s: Summary | None) -> Estimate | None:
    return s.primary if s else None


def compare_markdown(a: ReportModel, b: ReportModel, changes: list[Change], time_ratio: float,
                     min_seconds: float, force: bool = False) -> str:
    def who(m: ReportModel) -> str:  # every value from the run folders goes in as text (markup.lit, markup.code)
        mach = m.run.get("machine", {}) or {}
        commit = str((m.run.get("git") or {}).get("commit") or "unknown")[:10]
        seeds = sorted({r.seed for r in m.rows()})
        return (f"run {code(m.run_id)} ({code(m.run_dir, 400)}): profile {lit(m.run.get('profile'))}, seeds {seeds}, "
                f"{lit(mach.get('cpu'))}, device {lit((m.run.get('config') or {}).get('device'))}, "
                f"commit {code(commit)}")

    lines = [f"# benchsuite compare: {lit(a.run_id)} → {lit(b.run_id)}", "", f"- A: {who(a)}", f"- B: {who(b)}", ""]
    if a.synthetic or b.synthetic:
        lines += ["> **SYNTHETIC DATA** in at least one run: numbers check the machinery only.", ""]
    lines += [f"Rules: a quality change is flagged only when the 95% bootstrap intervals of A and B do not "
              f"overlap (no interval, no quality flag); a timing change only beyond ×{time_ratio:g} (and at least "
              f"{min_seconds:g} s on the slower side). Seeds are averaged within a run. Timing changes are not "
              f"called between different machines or for records timed under contention, nor quality changes "
              f"for shortened records" + (" (overridden: --force)" if force else " (`--force` calls them)") + ".",
              ""]
    kind_a, kind_b = machine_kind(a), machine_kind(b)
    if kind_a != kind_b:
        lines += [f"> **Different machines**: A ran on {lit(_describe_kind(kind_a))}, B on "
                  f"{lit(_describe_kind(kind_b))}; timing changes are "
                  + ("called anyway (--force)." if force else "not called."), ""]
    contended = [name for name, m in (("A", a), ("B", b)) if any(r.ok and r.contended for r in m.rows())]
    if contended:
        lines += [f"> **Contention**: records of {' and '.join(contended)} were timed while other processes "
                  f"competed for the cores; their timing changes are "
                  + ("called anyway (--force)." if force else "not called."), ""]
    noted = [c for c in changes if c.reproducibility]
    if noted:
        title = "Reruns" if same_code(a, b) and kind_a == kind_b else "Across CPU types"
        lines += [f"## {title}", ""]
        if title == "Reruns":
            same = sum(c.reproducibility.startswith("identical") for c in noted)
            lines += [f"Both runs ran commit `{((a.run.get('git') or {}).get('commit') or '')[:10]}` on the same kind "
                      f"of machine: {same} of {len(noted)} pipeline(s) gave identical metrics.", ""]
        else:
            lines += [f"A ran on {kind_a[0]}, B on {kind_b[0]}: kernels picked by instruction set (MKL, oneDNN, "
                      f"torch's vectorised reductions) sum in another order, so pipelines with floating-point "
                      f"training drift slightly; each difference against the pipeline's measured drift "
                      f"(`Pipeline.cpu_drift`):", ""]
        lines += [f"- `{c.pipeline}` ({c.task}, {c.dataset}, {c.split}): {c.reproducibility}" for c in noted] + [""]
    regressions = [c for c in changes if c.regression]
    flagged = [c for c in changes if c.flags]
    lines += ["## Flags", ""]
    if flagged:
        lines += [f"- {'**REGRESSION** ' if c.regression else ''}{code(c.pipeline)} ({lit(c.task)}, {lit(c.dataset)}, "
                  f"{lit(c.split)}): {'; '.join(lit(f) for f in c.flags)}" for c in flagged]
    else:
        lines.append("- nothing flagged: no change beyond the intervals or the timing ratio")
    lines += ["", f"{len(regressions)} regression(s).", ""]
    crossings = compare_studies(a, b)
    if crossings:  # study runs (benchsuite study): their crossovers side by side; the points compare row by row below
        lines += ["## Study crossovers", "", *crossings, ""]
    lines += ["## All pipelines", ""]
    header = ["task", "data set", "split", "pipeline", "family", "metric", "A", "A 95% CI", "B", "B 95% CI",
              "Δ", "fit s A→B", "images/s A→B", "status A→B", "flags"]
    rows = []
    for c in changes:
        rows.append([
            *(lit(v) for v in (c.task, c.dataset, c.split, c.pipeline, c.family, c.metric_title)),
            fmt_metric(c.a.primary.value if c.a else None), fmt_interval(_est(c.a)),
            fmt_metric(c.b.primary.value if c.b else None), fmt_interval(_est(c.b)),
            "–" if c.delta is None else f"{c.delta:+.3f}",
            f"{fmt_auto(c.a.fit_s if c.a else None)} → {fmt_auto(c.b.fit_s if c.b else None)}"
            + (f" ({fmt_ratio(c.b.fit_s / c.a.fit_s)})" if c.a and c.b and c.a.fit_s and c.b.fit_s else ""),
            f"{fmt_auto(c.a.images_per_s if c.a else None)} → {fmt_auto(c.b.images_per_s if c.b else None)}",
            f"{c.status_a} → {c.status_b}", "; ".join(lit(f) for f in c.flags) or "–",
        ])
    lines += [markdown_table(header, rows), ""]
    return "\n".join(lines)


def compare_runs(run_a: Path | str, run_b: Path | str, time_ratio: float = DEFAULT_TIME_RATIO,
                 min_seconds: float = DEFAULT_MIN_SECONDS, force: bool = False) -> tuple[str, list[Change]]:
    """The Markdown comparison of two run folders and the changes behind it (``force``: call timing changes
    across machines or under contention, and quality changes of shortened records, too)."""
    a, b = build_model(Path(run_a)), build_model(Path(run_b))
    changes = compare_models(a, b, time_ratio, min_seconds, force)
    return compare_markdown(a, b, changes, time_ratio, min_seconds, force), changes
