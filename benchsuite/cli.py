"""The ``benchsuite`` command line: ``run``, ``list``, ``check``, ``report``, ``compare``, ``export``,
``data check``."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

from benchsuite.errors import BenchsuiteError, ConfigError
from benchsuite.params import name_list, positive_float, positive_int, seed_list

log = logging.getLogger("benchsuite")


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _arg(check: Any, *args: Any) -> Any:
    """An argparse ``type`` from a :mod:`benchsuite.params` check; its ConfigError reaches :func:`main`, which
    prints it as one line (argparse would add its usage text)."""

    def convert(value: str) -> Any:
        return check(value, *args)

    return convert


def parse_params(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["cnn.epochs=3"]`` -> ``{"cnn": {"epochs": "3"}}``: syntax only here; the runner parses each value to
    the type of the pipeline's constructor parameter before any job starts (:mod:`benchsuite.params`)."""
    from benchsuite.params import split_assignments

    return split_assignments(items)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="quick", help="smoke | quick | full (default: quick)")
    p.add_argument("--tasks", type=_arg(name_list, "--tasks"),
                   help="comma-separated: classification, detection, proposals (default: all)")
    p.add_argument("--datasets", type=_arg(name_list, "--datasets"),
                   help="comma-separated data set specs: cifar10, voc2007, voc2012, voc:PATH (default: per task)")
    p.add_argument("--pipelines", type=_arg(name_list, "--pipelines"),
                   help="comma-separated pipeline ids or patterns (default: all)")
    p.add_argument("--exclude", type=_arg(name_list, "--exclude"), default=[],
                   help="pipeline ids or patterns to leave out")
    p.add_argument("--seeds", type=_arg(seed_list), default=[0], help="comma-separated seeds (default: 0)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    p.add_argument("--jobs", type=_arg(positive_int, "--jobs"), default=1,
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
    p.add_argument("--splits", type=_arg(name_list, "--splits"), default=["test"],
                   help="splits to score: test and/or val (default: test)")
    p.add_argument("--time-limit", type=_arg(positive_float, "--time-limit", " s"),
                   help="seconds per job before it is killed (default: the profile's)")
    p.add_argument("--time-budget", type=_arg(positive_float, "--time-budget", " s"),
                   help="opt-in time-boxed mode: seconds of training a pipeline may spend before it shortens its "
                        "schedule; shortened records are marked not comparable (default: the profile's fixed work)")
    p.add_argument("--memory-limit-mb", type=_arg(positive_float, "--memory-limit-mb", " MB"),
                   help="resident memory per job before it is killed (default: 90%% of RAM / --jobs; "
                        "at least 256)")
    p.add_argument("--param", action="append", default=[], metavar="PIPELINE.NAME=VALUE",
                   help="override a pipeline parameter (JSON value), repeatable")
    p.add_argument("--weights", help="a local state dict for the deep pipelines that accept one")
    p.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    p.add_argument("--executor", default="local",
                   help="local (worker processes on this machine, default) | ray (each job a task on a Ray cluster; "
                        "needs the ray extra)")
    p.add_argument("--ray-address",
                   help="with --executor ray: the cluster to use (host:port or auto; default: $RAY_ADDRESS, else a "
                        "local Ray started for the run)")


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
        time_limit_s=args.time_limit, time_budget_s=args.time_budget, memory_limit_mb=args.memory_limit_mb,
        params=parse_params(args.param),
        weights=args.weights, write_report=not args.no_report, argv=argv,
        executor=args.executor, ray_address=args.ray_address,
    )


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    from benchsuite.runner.execute import DeferredInterrupt

    # a Ctrl-C while the suite's libraries load is acted on once they have: a KeyboardInterrupt raised inside
    # a native library's import can abort the interpreter, or be swallowed by a library's bare except
    with DeferredInterrupt() as starting:
        from benchsuite.runner.run import run

        config = config_from_args(args, argv)
        starting.check("while starting, before any job started; nothing was run")
        result = run(config)
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
    from benchsuite.data.datasets import FORMATS
    from benchsuite.tasks.registry import TASKS

    others = [(what, p) for what, group in (("task", TASKS), ("data set format", FORMATS))
              for p in group.entries(include_broken=True) if not p.ok]
    for what, p in others:
        print(f"broken {what} plugin {p.name} ({p.ref}, from {p.distribution}): {p.error}", file=sys.stderr)
    return 1 if (broken or others) and getattr(args, "strict", False) else 0


def _check_target(target: str) -> tuple[type, str | None]:
    """The class named by ``target`` (an installed pipeline's id, or ``module:Class``) and its registered id
    (None when it is not installed under an entry point)."""
    from benchsuite.registry import discover, load_ref

    known = discover()
    if ":" in target:
        if os.getcwd() not in sys.path:  # `benchsuite check mymodule:Class` from the folder that holds it
            sys.path.append(os.getcwd())
        try:
            cls = load_ref(target)
        except Exception as exc:
            raise ConfigError(f"cannot import {target}: {type(exc).__name__}: {exc}") from None
        pid = getattr(cls, "id", None)
        info = known.get(pid) if isinstance(pid, str) else None
        return cls, (pid if info is not None and info.ok and load_ref(info.ref) is cls else None)
    info = known.get(target)
    if info is None:
        ok = ", ".join(pid for pid, i in known.items() if i.ok)
        raise ConfigError(f"unknown pipeline {target!r}; give an installed id ({ok}) or module:Class")
    try:
        cls = load_ref(info.ref)
    except Exception as exc:
        raise ConfigError(f"pipeline {target!r} cannot be imported ({info.ref}): {type(exc).__name__}: {exc}"
                          ) from None
    return cls, (target if info.ok else None)


def cmd_check(args: argparse.Namespace, argv: list[str]) -> int:
    """Conformance checks of one pipeline class, in this process (benchsuite.testing); ``--run`` also runs it
    once through a worker on the smoke data."""
    import time

    from benchsuite.params import check_params
    from benchsuite.testing import check_pipeline

    cls, pid = _check_target(args.target)
    name = getattr(cls, "id", "") or args.target
    overrides: dict[str, str] = {}
    for item in args.param:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"--param {item!r}: expected NAME=VALUE, for example k=3")
        overrides[key.strip()] = raw.strip()
    params = check_params(name, cls, overrides) if overrides else {}
    print(f"checking {name} ({cls.__module__}:{cls.__qualname__}, task {getattr(cls, 'task', '?')}, "
          f"profile {args.profile} sizes)")
    start = time.perf_counter()
    results = check_pipeline(cls, params, profile=args.profile, device=args.device)
    for r in results:
        print("  " + r.line())
    failed = [r for r in results if r.failed]
    print(f"{len(results) - len(failed)} of {len(results)} checks passed or skipped, {len(failed)} failed "
          f"({time.perf_counter() - start:.1f} s)")
    if failed:
        return 1
    if args.run:
        return _check_run(cls, pid, args, overrides)
    return 0


def _check_run(cls: type, pid: str | None, args: argparse.Namespace, overrides: dict[str, str]) -> int:
    """``benchsuite check --run``: the pipeline once through a worker on the smoke data, in a scratch folder."""
    import json
    import tempfile

    from benchsuite.runner.run import RunConfig, default_cache_dir, run

    if pid is None:
        raise ConfigError(f"--run needs {args.target} installed under the entry-point group "
                          f"benchsuite.pipelines (pip install your package), so that a worker can import it")
    with tempfile.TemporaryDirectory(prefix="benchsuite-check-") as folder:
        config = RunConfig(profile="smoke", tasks=[cls.task], pipelines=[pid], out=Path(folder) / "run",
                           cache_dir=args.cache_dir or default_cache_dir(), device=args.device,
                           params={pid: overrides} if overrides else {}, write_report=False,
                           argv=["check", "--run", args.target])
        result = run(config)
        bad = [r for r in result.records if r.get("status") != "ok"]
        for r in result.records:
            metrics = {k: v for k, v in (r.get("metrics") or {}).items() if isinstance(v, (int, float))}
            shown = ", ".join(f"{k} {v:.3g}" for k, v in list(metrics.items())[:3])
            print(f"  run: {r['task']} on {r['dataset']}: {r['status']}" + (f" ({shown})" if shown else "")
                  + (f": {r.get('error')}" if r.get("status") != "ok" else ""))
        for r in bad:
            log_file = Path(folder) / "run" / r.get("log", "")
            if log_file.is_file():
                tail = [ln for ln in log_file.read_text(errors="replace").splitlines() if ln.strip()][-15:]
                print("  log tail:\n    " + "\n    ".join(tail))
            elif r.get("fit_info"):
                print("  fit_info: " + json.dumps(r.get("fit_info"))[:500])
    return 1 if bad or not result.records else 0


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
                                 args.min_seconds, force=args.force)
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


def cmd_data_check(args: argparse.Namespace, argv: list[str]) -> int:
    """``benchsuite data check SPEC``: the data set's summary and every problem; 1 when a run would stop."""
    from benchsuite.data.check import check_dataset
    from benchsuite.runner.run import default_cache_dir

    env_root = os.environ.get("BENCHSUITE_DATA")
    data_root = args.data_root or (Path(env_root) if env_root else Path("data"))
    result = check_dataset(args.spec, data_root, args.cache_dir or default_cache_dir())
    print("\n".join(result.lines()))
    return 0 if result.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchsuite", description="Classical versus deep computer vision, "
                                     "benchmarked on the same data splits.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the benchmark and write records and a report")
    add_run_arguments(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("list", help="list the installed pipelines (and name broken task and format plugins)")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style id pattern")
    p.add_argument("--task", help="only pipelines of this task")
    p.add_argument("--strict", action="store_true", help="exit with status 1 when any installed plugin is broken")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("check", help="conformance checks of one pipeline on tiny synthetic data, in seconds")
    p.add_argument("target", help="an installed pipeline id, or module:Class")
    p.add_argument("--profile", default="smoke", help="whose profile_params size the pipeline (default: smoke)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a constructor parameter for the checks (over the profile's), repeatable")
    p.add_argument("--device", default="cpu", help="cpu | cuda (default: cpu)")
    p.add_argument("--run", action="store_true",
                   help="also run it once through a worker on the smoke data (benchsuite run --profile smoke)")
    p.add_argument("--cache-dir", type=Path, help="cache for the smoke data (default: $BENCHSUITE_CACHE or "
                                                  "~/.cache/benchsuite)")
    p.set_defaults(func=cmd_check)
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
    p.add_argument("--force", action="store_true",
                   help="call timing changes across different machines or under contention, and quality changes "
                        "of shortened records, too")
    p.set_defaults(func=cmd_compare)
    p = sub.add_parser("export", help="export a run's records as a tidy table (csv or parquet)")
    p.add_argument("run_dir")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv", help="default: csv")
    p.add_argument("--out", type=Path, help="file to write (default: RUN_DIR/records.FORMAT)")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("data", help="look at a data set before training on it")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    p = data_sub.add_parser("check", help="format, classes, split sizes, image and box sizes, fingerprint and every "
                                          "problem with its file, in seconds; exit 1 on a problem a run would stop on")
    p.add_argument("spec", help="a data set spec: imagefolder:PATH, coco:FILE.json, yolo:PATH, vocxml:PATH, "
                                "voc:PATH, cifar10, ...")
    p.add_argument("--data-root", type=Path,
                   help="folder with cifar-10-batches-py/ and VOCdevkit/ (default: $BENCHSUITE_DATA or ./data)")
    p.add_argument("--cache-dir", type=Path, help="cache for image headers and synthetic data "
                                                  "(default: $BENCHSUITE_CACHE or ~/.cache/benchsuite)")
    p.set_defaults(func=cmd_data_check)
    return parser


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    for noisy in ("numba", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _leave(code: int, hard_exit: bool) -> int:
    """Return ``code``; with ``hard_exit``, end the process at once instead: after an interrupt everything is
    on disk, and the interpreter's own teardown (collecting torch's and the data sets' objects) can take
    many seconds on a loaded machine."""
    if hard_exit:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
    return code


def main(argv: list[str] | None = None, hard_exit_on_interrupt: bool = True) -> int:
    """The ``benchsuite`` command. After an interrupt (exit status 130) the process ends at once unless
    ``hard_exit_on_interrupt`` is False (for callers that embed the command)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except BenchsuiteError as exc:
        print(f"benchsuite: error: {exc}", file=sys.stderr)
        return 2
    setup_logging(args.verbose)
    try:
        return int(args.func(args, argv) or 0)
    except BenchsuiteError as exc:
        print(f"benchsuite: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file system failure outside the run folder's own handling: still one line
        from benchsuite.results.store import storage_error

        print(f"benchsuite: error: {storage_error(exc, 'cannot access')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("benchsuite: stopped at once; the records written so far are kept; continue with the same "
              "command and --resume", file=sys.stderr)
        return _leave(130, hard_exit_on_interrupt)
    except Exception as exc:
        from benchsuite.runner.execute import RunInterrupted

        if not isinstance(exc, RunInterrupted):
            raise
        print(f"benchsuite: {exc}", file=sys.stderr)
        return _leave(130, hard_exit_on_interrupt)


if __name__ == "__main__":
    sys.exit(main())
