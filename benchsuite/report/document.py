"""The report as a list of neutral blocks (headings, paragraphs, lists, tables, figures).

:func:`build_document` turns a :class:`ReportModel` and its plots into blocks once; ``render`` writes the
same blocks as Markdown and as HTML. Text uses two inline marks only: ``**bold**`` and ```code```; every piece of
text that comes from the run folder (records, ``run.json``: what pipelines, plugins and data sets wrote) goes in
through :func:`~benchsuite.report.markup.lit` or :func:`~benchsuite.report.markup.code`, so it shows as text in both
outputs, never as markup. Values of the record's free-form blocks are checked for their type where they are used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from benchsuite.report.markup import code, lit
from benchsuite.report.model import Estimate, Group, Headline, ReportModel, Row, Study, Summary
from benchsuite.report.plots import Plot
from benchsuite.report.sections import Section
from benchsuite.report.tables import fmt_auto
from benchsuite.results.safe_paths import safe_name


@dataclass
class Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass
class Para:
    text: str
    kind: str = ""  # "banner" (a warning), "note"


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    row_kinds: list[str] = field(default_factory=list)  # "classical", "deep", "failed", ...


@dataclass
class Figures:
    plots: list[Plot]
    kind: str = "plot"  # "plot" | "gallery"


@dataclass
class Legend:
    """What the colours of the figures above mark: ``title`` (``"Boxes"``) and ``(rgb, colour name, meaning)``."""

    title: str
    entries: list[tuple[tuple[int, int, int], str, str]]


Block = Heading | Para | Bullets | Table | Figures | Legend


# ------------------------------------------------------------------------------------------------ formats


def fmt_metric(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def fmt_interval(e: Estimate | None) -> str:
    if e is None or not e.has_interval:
        return "–"
    return f"{e.lo:.3f}–{e.hi:.3f}"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "–"
    return f"{r:.2g}×" if r < 10 else f"{r:,.0f}×"


def _with_ci(s: Summary) -> str:
    iv = f" (95% CI {s.primary.lo:.3f}–{s.primary.hi:.3f})" if s.primary.has_interval else ""
    return f"{s.primary.value:.3f}{iv}"


def _seeds(s: Summary) -> str:
    return "" if len(s.seeds) < 2 else f" (mean of {len(s.seeds)} seeds)"


def headline_text(g: Group, h: Headline) -> str:
    where = f"**{lit(g.task)}, {lit(g.dataset)} ({lit(g.split)})**, {lit(g.metric_title)}"
    if h.classical and h.deep:
        c, d = h.classical, h.deep
        deep_better = h.gap > 0 if g.higher_is_better else h.gap < 0  # by the metric's direction
        lead = "neither" if not h.gap else "deep" if deep_better else "classical"
        amount = f"{abs(h.gap) * 100:.1f} points" if g.metric_points else f"{abs(h.gap):.3g}"
        verdict = f"{lead} ahead by **{amount}**" if h.gap else "a tie"
        verdict += (" (the 95% intervals do not overlap)" if h.gap_clear
                    else " (the 95% intervals overlap: not a clear difference)"
                    if c.primary.has_interval and d.primary.has_interval else "")
        cost = (f"Cost: {code(d.pipeline)} fits in {fmt_auto(d.fit_s)} s vs {fmt_auto(c.fit_s)} s "
                f"(**{fmt_ratio(h.fit_ratio)}**) and runs {fmt_auto(d.images_per_s)} vs "
                f"{fmt_auto(c.images_per_s)} images/s (**{fmt_ratio(h.speed_ratio)}** the classical speed).")
        text = (f"{where}: best deep {code(d.pipeline)} {_with_ci(d)}{_seeds(d)} vs best classical "
                f"{code(c.pipeline)} {_with_ci(c)}{_seeds(c)}: {verdict}. {cost}")
    else:
        only = h.classical or h.deep
        ran = "gave a result" if h.passed_over else "ran"
        text = (f"{where}: only {lit(only.family)} pipelines {ran}; best {code(only.pipeline)} {_with_ci(only)}"
                f"{_seeds(only)}."
                if only else f"{where}: no trained pipeline {'gave a result' if h.passed_over else 'succeeded'}.")
    if h.reference:
        text += (f" Pretrained reference {code(h.reference.pipeline)} (not trained here): "
                 f"{_with_ci(h.reference)}.")
    if h.passed_over:
        text += (f" Left out as non-results (not distinguishable from the floor on some seed): "
                 f"{', '.join(f'{code(s.pipeline)} {_with_ci(s)}' for s in h.passed_over)}.")
    reads = [s for s in (h.classical, h.deep)
             if s is not None and any(cache_reads(r) for r in g.rows if r.pipeline == s.pipeline)]
    if reads:
        text += (f" {', '.join(code(s.pipeline) for s in reads)} read another pipeline's cached output, whose cost "
                 f"its seconds leave out (see the work shared between pipelines below).")
    cut = [s for s in (h.classical, h.deep) if s is not None and s.shortened]
    if cut:
        detail = "; ".join(shortened_lines([r for r in g.rows if r.pipeline in {s.pipeline for s in cut}]))
        text += (f" **Not comparable: {', '.join(code(s.pipeline) for s in cut)} did less work than the profile "
                 f"asked** ({detail}).")
    return text


# ------------------------------------------------------------------------------------------------ provenance


def _dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a dict, else an empty one (a free-form block of an untrusted file)."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    """``value`` when it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def derived_lines(datasets: list[dict[str, Any]]) -> list[str]:
    """One line per study axis and base data set for a study's derived data sets (``derived_from``): the base,
    and each derived data set's name, counts and fingerprint."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for ds in datasets:
        d = ds["derived_from"]
        groups.setdefault((str(d.get("name")), str(d.get("axis"))), []).append(ds)
    lines = []
    for (base, axis), members in groups.items():
        d = members[0]["derived_from"]
        counts = " / ".join(f"{lit(k)} {v:,}" for k, v in _dict(d.get("split_counts")).items() if isinstance(v, int))
        origin = "**SYNTHETIC stand-in**" if members[0].get("origin") == "synthetic" else "real"
        base_counts = _dict(d.get("split_counts"))
        parts = []
        for m in members:
            changed = {k: v for k, v in _dict(m.get("split_counts")).items() if base_counts.get(k) != v
                       and "." not in k and isinstance(v, int)}
            sizes = "".join(f", {lit(k)} {v:,}" for k, v in changed.items())
            parts.append(f"{code(m.get('name'))} (seed {lit(_dict(m['derived_from']).get('seed'))}{sizes}, "
                         f"fingerprint {code(m.get('fingerprint'))})")
        lines.append(f"Study data sets derived from {code(base)} ({origin}; {lit(d.get('description', ''))}; splits "
                     f"{counts}; fingerprint {code(d.get('fingerprint'))}) by the **{lit(axis)}** axis: "
                     + "; ".join(parts) + ".")
    return lines


def dataset_lines(run: dict[str, Any]) -> list[str]:
    datasets = [_dict(ds) for ds in _list(run.get("datasets"))]
    lines = derived_lines([ds for ds in datasets if isinstance(ds.get("derived_from"), dict)])
    for ds in datasets:
        if isinstance(ds.get("derived_from"), dict):
            continue
        counts = " / ".join(f"{lit(k)} {v:,}" for k, v in _dict(ds.get("split_counts")).items()
                            if isinstance(v, int))
        if ds.get("origin") == "synthetic":
            origin = "**SYNTHETIC stand-in**"
        elif ds.get("canonical"):
            origin = "real, canonical"
        elif ds.get("canonical") is None:
            origin = "real (no canonical release to check against)"
        else:
            origin = "real, **not canonical**: JPEG-derived or otherwise re-encoded, or a different split"
        fps = ", ".join(f"{lit(k)} {code(v)}" for k, v in sorted(_dict(ds.get("split_fingerprints")).items()))
        text = (f"{code(ds.get('name'))} ({origin}): {lit(ds.get('description', ''))}. Splits: {counts}. "
                f"Fingerprint {code(ds.get('fingerprint'))}; split fingerprints {fps}. "
                f"Root {code(ds.get('root'), 400)}.")
        notes = _list(ds.get("notes"))
        if notes:
            text += " Notes: " + "; ".join(lit(n) for n in notes) + "."
        lines.append(text)
    return lines


def run_lines(run: dict[str, Any], rows: list[Row]) -> list[str]:
    m = _dict(run.get("machine"))
    gpu = m.get("gpu")
    gpu_text = (f", GPU {lit(gpu.get('name'))} ({lit(gpu.get('memory_gb'))} GB)" if isinstance(gpu, dict)
                else ", no GPU")
    git = _dict(run.get("git"))
    commit = code(str(git.get("commit") or "unknown")[:10]) + (" (uncommitted changes)" if git.get("dirty") else "")
    v = _dict(run.get("versions"))
    cfg = _dict(run.get("config"))
    seeds = sorted({r.seed for r in rows}) or _list(cfg.get("seeds"))
    versions = ", ".join(f"{lit(k)} {lit(val)}" for k, val in v.items() if val)
    argv = " ".join(str(a) for a in _list(run.get("argv")))
    return [
        f"Profile **{lit(run.get('profile'))}**; device {lit(cfg.get('device'))} (asked: "
        f"{lit(cfg.get('device_requested'))}); {lit(cfg.get('jobs'))} job(s) at a time; seeds "
        f"{', '.join(lit(s) for s in seeds or [])}; scored splits "
        f"{', '.join(lit(x) for x in _list(cfg.get('eval_splits')))}.",
        f"Machine: {lit(m.get('cpu'))}, {lit(m.get('cores'))} cores, {lit(m.get('memory_gb'))} GB RAM{gpu_text} "
        f"({lit(m.get('platform'))}).",
        f"Versions: {versions}.",
        f"Commit {commit}; created "
        f"{lit(run.get('created_at'))}; command {code(argv, 1000)}.",
        *machine_state_lines(run),
        *changed_config_lines(run),
    ]


def changed_config_lines(run: dict[str, Any]) -> list[str]:
    """One line per session resumed with ``--allow-changed`` (``run.json``'s ``changes``): what differed."""
    out = []
    for change in _list(run.get("changes")):
        change = _dict(change)
        what = "; ".join(lit(d) for d in _list(change.get("differences")))
        out.append(f"**Resumed with a changed configuration** ({code('--allow-changed')}) at {lit(change.get('at'))}: "
                   f"{what}. The records of that session are marked (`config_changed`).")
    return out


def machine_state_lines(run: dict[str, Any]) -> list[str]:
    """What the machine was doing when the run started (``run.json``'s ``machine_state``)."""
    state = run.get("machine_state")
    if not isinstance(state, dict):
        return []
    loads = _list(state.get("load_average"))
    busy = ", ".join(f"{lit(p.get('name'))} {lit(p.get('cpu_percent'))}%"
                     for p in _list(state.get("busiest_processes")) if isinstance(p, dict))
    return [f"Machine state at the start: load average {' / '.join(lit(v) for v in loads) or '?'} (1/5/15 min), "
            f"{lit(state.get('busy_cores', '?'))} of {lit(state.get('cores', '?'))} cores busy"
            + (f" (busiest other processes: {busy})" if busy else "") + ". Per record, `timing.contended` follows "
            f"the rule: {lit(state.get('contention_rule', '?'))}."]


# ------------------------------------------------------------------------------------------------ tables


def _pipeline_cell(r: Row) -> str:
    return (lit(r.pipeline) + (" (pretrained ref.)" if r.pretrained_reference else "")
            + (" (harness floor)" if r.harness_floor else "") + (" (shortened)" if r.shortened else "")
            + (" (changed config)" if r.record.get("config_changed") else "")
            + (" (non-result)" if r.non_result else ""))


def non_result_lines(rows: list[Row]) -> list[str]:
    """One line per record flagged a non-result, with the reason its task gave."""
    return [f"{code(r.pipeline)} (seed {lit(r.seed)}): {lit(r.non_result.get('reason'))}" for r in rows
            if r.non_result]


def shortcut_text(c: dict[str, Any]) -> str:
    """One shortcut of a record as text: ``epochs 1 of 9 (--time-budget 60 s)``."""
    return f"{lit(c.get('what'))} {lit(c.get('done'))} of {lit(c.get('asked'))} ({lit(c.get('reason'))})"


def shortened_lines(rows: list[Row]) -> list[str]:
    """One line per record that did less than its profile asked, naming each shortcut."""
    return [f"{code(r.pipeline)} (seed {r.seed}): " + "; ".join(shortcut_text(c) for c in r.shortcuts)
            for r in rows if r.shortened]


def cache_reads(r: Row) -> list[tuple[str, dict[str, Any]]]:
    """``(producer id, consumed block)`` for each producer whose output the successful record ``r`` read from the
    cache (``consumed.<producer>.cached_images`` above zero); empty for the others."""
    if not r.ok:
        return []
    blocks = ((producer, _dict(block)) for producer, block in sorted(_dict(r.record.get("consumed")).items()))
    return [(producer, used) for producer, used in blocks if int(used.get("cached_images") or 0)]


def shared_work_lines(rows: list[Row], everything: list[Row]) -> list[str]:
    """One line per record of ``rows`` whose job read another pipeline's output from the cache (its ``consumed``
    block): how many images it read and computed, and, when the producer's job (among ``everything``, the run's
    rows) computed them for it (its ``produced`` block), what that cost there. Their times leave that work out,
    so a reader comparing fit seconds must know."""
    producers = {r.job_id: r for r in everything}
    out = []
    for r in rows:
        for producer, used in cache_reads(r):
            line = (f"{code(r.pipeline)} (seed {r.seed}) read the output of {code(producer)} for "
                    f"{int(used['cached_images'])} images from "
                    f"the cache and computed {lit(used.get('computed_images', 0))} itself "
                    f"({fmt_auto(used.get('compute_s'))} s): its fit and predict seconds leave the images read out")
            job = producers.get(str(used.get("producer_job")))
            made = _dict(job.record.get("produced")) if job is not None else {}
            if made and not made.get("error"):
                images = ", ".join(f"{n} {split}" for split, n in _dict(made.get("images")).items())
                consumers = len(_list(made.get("consumer_jobs")))
                line += (f"; the {code(producer)} job (seed {job.seed}) computed {images} images once for "
                         f"{consumers} consumer job(s) in {fmt_auto(made.get('compute_s'))} s (`produced`), besides "
                         f"the split it scores")
            out.append(line + ".")
    return out


def contention_banner(rows: list[Row]) -> str | None:
    """The banner over a table whose timing columns were (partly) measured under contention."""
    hit = [r for r in rows if r.contended]
    if not hit:
        return None
    names = ", ".join(code(r.pipeline) + (f" (seed {r.seed})" if r.seed else "") for r in hit)
    return (f"**Timings measured under contention**: while {names} ran, other processes took the cores they "
            f"wanted (`timing.contended`; `timing.fit` and `timing.predict` give the share of time the job's threads "
            f"waited for a CPU, the other processes' cores and the load). Their fit s, images/s and latencies are "
            f"not the pipelines' idle speed; quality metrics are unaffected.")


def harness_floor_line(rows: list[Row]) -> str | None:
    """The harness's own cost per job, from the ``null-*`` reference of the group."""
    floors = [r for r in rows if r.harness_floor and r.ok]
    if not floors:
        return None
    r = floors[0]
    t = r.record.get("timing") or {}
    return (f"Harness floor ({code(r.pipeline)}, a pipeline that does no work): fit {fmt_auto(r.fit_s)} s, predict "
            f"{fmt_auto(t.get('predict_s'))} s for {lit(t.get('images', '?'))} images, job wall "
            f"{fmt_auto(t.get('wall_s'))} s (worker start, data loading, validation and saving): the cost every "
            f"other row's job carries on top of its own work.")


def _status_cell(r: Row) -> str:
    return "ok" if r.ok else f"failed ({lit(r.failure)})"


def task_columns(g: Group) -> list[tuple[str, Any]]:
    """(title, function of a row -> cell text) for the quality columns of ``g``'s task."""
    def m(key: str):
        return lambda r: fmt_metric(r.metric(key))

    def ci(key: str):
        return lambda r: fmt_interval(r.estimates.get(key))

    def auto(key: str):
        return lambda r: fmt_auto(r.metric(key))

    task = g.spec
    if task is None:  # a task no longer installed: the cost columns only
        return []
    shows = {"value": m, "interval": ci, "auto": auto}
    return [(lit(c.title), shows.get(c.show, m)(c.metric)) for c in task.columns
            if not c.optional or any(r.metric(c.metric) is not None for r in g.rows)]


def group_table(g: Group) -> Table:
    cols = [("pipeline", _pipeline_cell), ("family", lambda r: lit(r.family)), ("seed", lambda r: str(r.seed)),
            *task_columns(g),
            ("fit s", lambda r: fmt_auto(r.fit_s)), ("images/s", lambda r: fmt_auto(r.images_per_s)),
            ("latency p50 ms", lambda r: fmt_auto(r.latency_p50_ms)),
            ("latency p95 ms", lambda r: fmt_auto(r.latency_p95_ms)),
            ("peak RSS MB", lambda r: fmt_auto(r.peak_mb)), ("weights", lambda r: lit(r.weights, 200)),
            ("status", _status_cell)]
    rows = [[f(r) for _, f in cols] for r in g.rows]
    kinds = [r.family if r.ok else "failed" for r in g.rows]
    return Table([t for t, _ in cols], rows, kinds)


def variant_lines(g: Group) -> list[str]:
    """One line per variant a record scored beside its main prediction (``metrics.variants``): the variant's
    value of the group's primary metric."""
    lines = []
    for r in g.rows:
        for name, vals in _dict(_dict(r.record.get("metrics")).get("variants")).items():
            value = vals.get(g.metric) if isinstance(vals, dict) else None
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                lines.append(f"{code(r.pipeline)} with {lit(name)}: {lit(g.metric_title)} {value:.3f}")
    return lines


def study_blocks(study: Study) -> list[Block]:
    """A study's section: its title, a table per table group of its rows (the task's quality columns) and the
    notes its pipelines declare."""
    blocks: list[Block] = [Heading(2, lit(study.title), "study-" + safe_name("-".join(study.title.lower().split())))]
    for g, rows in study.parts:
        part = Group(g.task, g.dataset, g.split, g.metric, g.metric_title,
                     sorted(rows, key=lambda r: (r.pipeline, r.seed)), None, g.higher_is_better, g.metric_points)
        cols = [("pipeline", _pipeline_cell), ("data set", lambda r: lit(r.dataset)),
                ("family", lambda r: lit(r.family)), ("seed", lambda r: str(r.seed)), *task_columns(part),
                ("status", _status_cell)]
        if len(study.parts) > 1:
            blocks.append(Para(f"{lit(g.task)}: {lit(g.dataset)}, {lit(g.split)} split"))
        blocks.append(Table([t for t, _ in cols], [[f(r) for _, f in cols] for r in part.rows],
                            [r.family if r.ok else "failed" for r in part.rows]))
    blocks += [Para(lit(note, line_start=True), "note") for note in study.notes]
    return blocks


# ------------------------------------------------------------------------------------------------ document


def build_document(model: ReportModel, plots: dict[tuple[str, str, str], list[Plot]],
                   sections: dict[tuple[str, str, str], list[Section]] | None = None,
                   axis_studies: tuple[list[str], list[Block]] | None = None) -> list[Block]:
    """The report's blocks: banners, the headline, provenance, a table per group with its plots and its task's
    sections, the studies, the failed jobs and the notes. ``axis_studies``: the headlines and sections of the
    run's studies over a data axis (:mod:`benchsuite.report.study_axes`); their points' groups are shown there,
    not as tables of their own."""
    sections = sections or {}
    study_heads, study_sections = axis_studies or ([], [])
    groups = [g for g in model.groups if not (g.rows and all(isinstance(r.record.get("study"), dict) for r in g.rows))]
    doc: list[Block] = [Heading(1, f"benchsuite report: run {lit(model.run_id)}")]
    synthetic = model.synthetic_names
    if synthetic:
        doc.append(Para(f"**SYNTHETIC DATA**: this run used generated stand-ins ({', '.join(map(lit, synthetic))}), "
                        f"not real images. Its numbers check the machinery; they are not comparable with published "
                        f"results.", "banner"))
    not_canonical = [lit(d.get("name")) for d in model.datasets
                     if isinstance(d, dict) and d.get("origin") == "real" and d.get("canonical") is False]
    if not_canonical:
        doc.append(Para(f"Real data that is **not canonical** ({', '.join(not_canonical)}): numbers can differ "
                        f"slightly from published ones.", "note"))
    budget = model.run.get("time_budget_s")
    if budget is not None:
        doc.append(Para(f"**TIME-BOXED RUN** (`--time-budget {budget:g}`): pipelines could train for less than "
                        f"their profile's fixed work; every record it shortened is marked and is **not comparable** "
                        f"with records of a fixed-work run.", "banner"))
    shortened = [r for r in model.rows() if r.shortened]
    if shortened:
        doc.append(Para(f"**{len(shortened)} record(s) did less work than the profile asked** (marked "
                        f"\"shortened\" in the tables): " + "; ".join(shortened_lines(shortened)) + ".", "banner"))
    contended = [r for r in model.rows() if r.contended]
    if contended:
        doc.append(Para(f"**{len(contended)} record(s) were timed under contention** (other processes competed for "
                        f"the cores): their timings are marked per table; quality metrics are unaffected.", "note"))
    missing = no_evidence_text(model)
    if missing:
        doc.append(Para(missing, "note"))
    changed = [r for r in model.rows() if r.record.get("config_changed")]
    if changed:
        doc.append(Para(f"**{len(changed)} record(s) come from a session resumed with a changed configuration** "
                        f"(`--allow-changed`, marked \"changed config\" in the tables): they are not comparable with "
                        f"the run's other records; what changed is listed under Data and run.", "banner"))
    findings = _list(model.run.get("data_findings"))
    if findings:
        doc.append(Para("**Data warnings** found before the jobs ran: " + "; ".join(lit(f) for f in findings) + ".",
                        "banner"))
    doc.append(Para(f"Profile **{lit(model.run.get('profile'))}**, {len(model.rows())} record(s), "
                    f"{len(model.failures)} failed."))

    doc.append(Heading(2, "Headline", "headline"))
    heads = [*study_heads, *(headline_text(g, g.headline) for g in groups if g.headline)]
    doc.append(Bullets(heads) if heads else Para("No successful records yet."))
    if len(heads) > len(study_heads):
        doc.append(Para("Gap: best deep minus best classical (seed means), in points of the metric ×100; cost "
                        "ratios are deep over classical. Pretrained references are left out of the comparison.",
                        "note"))

    doc.append(Heading(2, "Data and run", "provenance"))
    lines = dataset_lines(model.run)
    described = {d.get("name") for d in model.datasets if isinstance(d, dict)}
    for name in dict.fromkeys(r.dataset for r in model.rows() if r.dataset not in described):
        rec = next(r.record for r in model.rows() if r.dataset == name)
        origin = "**SYNTHETIC stand-in**" if rec.get("data_origin") == "synthetic" else (
            "real, canonical" if rec.get("data_canonical") else "real, **not canonical**")
        lines.append(f"{code(name)} ({origin}): not described in run.json (an earlier part of a resumed run); "
                     f"fingerprint {code(rec.get('dataset_fingerprint'))}, test split "
                     f"{code(rec.get('split_fingerprint'))} (from the records).")
    doc.append(Bullets(lines))
    doc.append(Bullets(run_lines(model.run, model.rows())))

    doc += study_sections
    for g in groups:
        doc.append(Heading(2, f"{lit(g.task)}: {lit(g.dataset)}, {lit(g.split)} split", safe_name(g.slug)))
        banner = contention_banner(g.rows)
        if banner:
            doc.append(Para(banner, "banner"))
        doc.append(group_table(g))
        cut = shortened_lines(g.rows)
        if cut:
            doc += [Para("Shortened records (less work than the profile asked; not comparable):"), Bullets(cut)]
        flagged = non_result_lines(g.rows)
        if flagged:
            doc += [Para("Non-results (not distinguishable from the floor, a pipeline that ignores the pixels: "
                         "the model has not learned; \"non-result\" in the table):"), Bullets(flagged)]
        floor = harness_floor_line(g.rows)
        if floor:
            doc.append(Para(floor, "note"))
        variants = variant_lines(g)
        if variants:
            doc += [Para("Variants scored beside the main prediction:"), Bullets(variants)]
        shared = shared_work_lines(g.rows, model.rows())
        if shared:
            doc += [Para("Work shared between pipelines (counted once, in the producer's record):"), Bullets(shared)]
        if any((r.record.get("timing") or {}).get("shared_machine") for r in g.rows):
            doc.append(Para("Timings were taken while other jobs shared the machine (`--jobs` > 1).", "note"))
        if plots.get(g.key):
            doc.append(Figures(plots[g.key]))
        for section in sections.get(g.key, []):
            doc.append(Heading(3, lit(section.title)))
            if section.table is not None:
                doc.append(Table(*section.table))
            doc += [Para(note, "note") for note in section.notes]
            if section.legend:
                doc.append(Legend(section.legend_title, section.legend))
            doc.append(Figures(section.figures, "gallery"))

    for study in model.studies():
        doc += study_blocks(study)

    if model.failures:
        doc.append(Heading(2, "Failed jobs", "failed"))
        doc.append(Bullets([f"{code(r.pipeline)} ({lit(r.task)}, {lit(r.dataset)}, seed {r.seed}): {lit(r.failure)}: "
                            f"{lit(str(r.error or '').strip(), 500)}" for r in model.failures]))
    if not model.rows():
        doc.append(Para("No records yet."))
    doc.append(Para(intervals_note(model) + " Timings: fit wall time, images/s over the scored split, "
                    "single-image latency after warm-up.", "note"))
    return doc


def intervals_note(model: ReportModel) -> str:
    """How the intervals were drawn, per task of the report (each task says so itself)."""
    specs = [g.spec for g in model.groups if g.spec is not None and g.spec.interval_statistic]
    parts = [f"{lit(s.name)} {lit(s.interval_statistic)}" for s in dict.fromkeys(specs)]
    how = f" ({'; '.join(parts)})" if parts else ""
    return (f"Intervals: 95% percentile bootstrap over test images{how}, from the per-image evidence each task "
            f"saved when it scored the split.")


def no_evidence_text(model: ReportModel) -> str | None:
    """The note for records whose run folder holds no evidence file (no bootstrap interval for them)."""
    rows = model.no_evidence
    if not rows:
        return None
    names = ", ".join(dict.fromkeys(code(r.pipeline) for r in rows))
    return (f"**Intervals unavailable for {len(rows)} record(s)** ({names}): their job folders hold no evidence "
            f"file (`evidence-<split>.npz`, written by the task when it scores a split; this run folder predates "
            f"it). The report never reopens the data sets; where a record carries its own interval "
            f"(`metrics.<metric>_ci95`) that one is shown. Rerun the jobs for bootstrap intervals.")
