"""The ``benchsuite`` command line: ``run``, ``list``, ``report``, ``compare``, ``export``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from benchsuite.errors import BenchsuiteError, ConfigError

log = logging.getLogger("benchsuite")


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _seeds(value: str) -> list[int]:
    try:
        return [int(v) for v in _csv(value)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be integers separated by commas, got {value!r}") from None


def parse_params(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["cnn.epochs=3", "hog-svm.c_values=[0.1,1]"]`` -> ``{"cnn": {"epochs": 3}, ...}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        pipeline, dot, name = key.partition(".")
        if not sep or not dot or not pipeline or not name:
            raise ConfigError(f"--param {item!r}: expected PIPELINE.NAME=VALUE, for example cnn.epochs=3")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(pipeline, {})[name] = value
    return out


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="quick", help="smoke | quick | full (default: quick)")
    p.add_argument("--tasks", type=_csv, help="comma-separated: classification, detection, proposals (default: all)")
    p.add_argument("--datasets", type=_csv,
                   help="comma-separated data set specs: cifar10, voc2007, voc2012, voc:PATH (default: per task)")
    p.add_argument("--pipelines", type=_csv, help="comma-separated pipeline ids or patterns (default: all)")
    p.add_argument("--exclude", type=_csv, default=[], help="pipeline ids or patterns to leave out")
    p.add_argument("--seeds", type=_seeds, default=[0], help="comma-separated seeds (default: 0)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    p.add_argument("--jobs", type=int, default=1,
                   help="jobs run side by side (default 1; timings of jobs that share the machine are marked)")
    p.add_argument("--out", type=Path, help="run folder (default: results/<run-id>)")
    p.add_argument("--results-root", type=Path, default=Path("results"), help="where new runs go (default: results)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out (or the latest under --results-root), skipping recorded jobs")
    p.add_argument("--retry-failed", action="store_true", help="with --resume: run failed jobs again")
    p.add_argument("--data-root", type=Path,
                   help="folder with cifar-10-batches-py/ and VOCdevkit/ (default: $BENCHSUITE_DATA or ./data)")
    p.add_argument("--cache-dir", type=Path, help="cache for synthetic data and proposals "
                                                  "(default: $BENCHSUITE_CACHE or ~/.cache/benchsuite)")
    p.add_argument("--download", action="store_true", help="download missing public data sets (needs the network)")
    p.add_argument("--splits", type=_csv, default=["test"], help="splits to score: test and/or val (default: test)")
    p.add_argument("--time-limit", type=float, help="seconds per job before it is killed (default: the profile's)")
    p.add_argument("--memory-limit-mb", type=float, help="resident memory per job before it is killed "
                                                         "(default: 90%% of RAM / --jobs)")
    p.add_argument("--param", action="append", default=[], metavar="PIPELINE.NAME=VALUE",
                   help="override a pipeline parameter (JSON value), repeatable")
    p.add_argument("--weights", help="a local state dict for the deep pipelines that accept one")
    p.add_argument("--no-report", action="store_true", help="do not write the report at the end")


def config_from_args(args: argparse.Namespace, argv: list[str]) -> Any:
    from benchsuite.runner.run import RunConfig, default_cache_dir

    env_root = os.environ.get("BENCHSUITE_DATA")
    data_root = args.data_root or (Path(env_root) if env_root else Path("data"))
    return RunConfig(
        profile=args.profile, tasks=args.tasks, datasets=args.datasets, pipelines=args.pipelines,
        exclude=args.exclude, seeds=args.seeds, device=args.device, jobs=args.jobs, out=args.out,
        results_root=args.results_root, resume=args.resume, retry_failed=args.retry_failed,
        data_root=data_root, data_root_explicit=args.data_root is not None or env_root is not None,
        cache_dir=args.cache_dir or default_cache_dir(), download=args.download, eval_splits=args.splits,
        time_limit_s=args.time_limit, memory_limit_mb=args.memory_limit_mb, params=parse_params(args.param),
        weights=args.weights, write_report=not args.no_report, argv=argv,
    )


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    from benchsuite.runner.run import run

    result = run(config_from_args(args, argv))
    failed = sum(r.get("status") != "ok" for r in result.records)
    print(f"run folder: {result.run_dir}")
    if result.report_path:
        print(f"report: {result.report_path}")
    if getattr(result, "html_path", None):
        print(f"html report: {result.html_path}")
    if failed:
        print(f"{failed} record(s) failed; see the report's 'Failed jobs' section")
    return 0


def cmd_list(args: argparse.Namespace, argv: list[str]) -> int:
    from benchsuite.registry import list_pipelines

    infos = list_pipelines(args.pattern, args.task, include_broken=True)
    rows = [("id", "task", "family", "devices", "source", "description")]
    for i in infos:
        if i.ok:
            kind = i.family + (" (pretrained reference)" if i.pretrained_reference else "")
            rows.append((i.id, i.task, kind, ",".join(i.devices), i.distribution, i.description))
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    for r in rows:
        print("  ".join(r[c].ljust(widths[c]) for c in range(5)) + "  " + r[5])
    broken = [i for i in infos if not i.ok]
    for i in broken:
        print(f"broken plugin {i.id} ({i.ref}, from {i.distribution}): {i.error}", file=sys.stderr)
    return 0


def _run_folder(path: str) -> Path:
    run_dir = Path(path)
    if not (run_dir / "run.json").is_file():
        raise BenchsuiteError(f"{run_dir}: not a run folder (no run.json)")
    return run_dir


def cmd_report(args: argparse.Namespace, argv: list[str]) -> int:
    from benchsuite.report.markdown import write_report

    paths = write_report(_run_folder(args.run_dir), html=not args.no_html)
    print(paths.markdown)
    if paths.html:
        print(paths.html)
    return 0


def cmd_compare(args: argparse.Namespace, argv: list[str]) -> int:
    from benchsuite.report.compare import compare_runs

    if args.time_ratio <= 1:
        raise ConfigError(f"--time-ratio must be above 1, got {args.time_ratio}")
    text, changes = compare_runs(_run_folder(args.run_a), _run_folder(args.run_b), args.time_ratio,
                                 args.min_seconds)
    if args.out:
        from benchsuite.results.atomic import atomic_write_text

        atomic_write_text(Path(args.out), text)
        print(args.out)
    else:
        print(text)
    regressions = [c for c in changes if c.regression]
    if regressions:
        print(f"{len(regressions)} regression(s): " + ", ".join(f"{c.pipeline} ({c.task}, {c.dataset})"
                                                              for c in regressions), file=sys.stderr)
    return 1 if regressions and args.fail_on_regression else 0


def cmd_export(args: argparse.Namespace, argv: list[str]) -> int:
    from benchsuite.results.export import export_run

    print(export_run(_run_folder(args.run_dir), args.format, args.out))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchsuite", description="Classical versus deep computer vision, "
                                     "benchmarked on the same data splits.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the benchmark and write records and a report")
    add_run_arguments(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("list", help="list the installed pipelines")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style id pattern")
    p.add_argument("--task", help="only pipelines of this task")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("report", help="write report.md and report.html for a run folder")
    p.add_argument("run_dir")
    p.add_argument("--no-html", action="store_true", help="write report.md only")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("compare", help="compare two run folders: deltas, flagged changes (Markdown)")
    p.add_argument("run_a", help="the baseline run folder")
    p.add_argument("run_b", help="the run folder to check against it")
    p.add_argument("--time-ratio", type=float, default=1.5,
                   help="flag a fit or prediction time change beyond this ratio (default 1.5)")
    p.add_argument("--min-seconds", type=float, default=0.5,
                   help="ignore timing changes where both sides take less than this (default 0.5 s)")
    p.add_argument("--out", type=Path, help="write the Markdown here instead of stdout")
    p.add_argument("--fail-on-regression", action="store_true",
                   help="exit with status 1 when a regression is flagged (for CI)")
    p.set_defaults(func=cmd_compare)
    p = sub.add_parser("export", help="export a run's records as a tidy table (csv or parquet)")
    p.add_argument("run_dir")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv", help="default: csv")
    p.add_argument("--out", type=Path, help="file to write (default: RUN_DIR/records.FORMAT)")
    p.set_defaults(func=cmd_export)
    return parser


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    for noisy in ("numba", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        return int(args.func(args, argv) or 0)
    except BenchsuiteError as exc:
        print(f"benchsuite: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("benchsuite: interrupted; continue with the same command and --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
