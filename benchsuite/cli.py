"""The ``benchsuite`` command line: ``run``, ``study``, ``list``, ``check``, ``report``, ``compare``, ``export``,
``data check``.

Exit status: 0 when all went well; 1 when a check failed (``check``, ``list --strict``, ``compare
--fail-on-regression``); 2 for a bad option, a configuration error or a file system failure (one line on stderr);
3 when ``run`` finished but some of its jobs failed (:data:`EXIT_JOBS_FAILED`; ``--allow-failures`` makes it 0);
130 after an interrupt.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchsuite.errors import BenchsuiteError, ConfigError
from benchsuite.params import name_list, positive_float, positive_int, seed_list

log = logging.getLogger("benchsuite")

#: the exit status of a ``run`` that finished with failed jobs (unless ``--allow-failures``)
EXIT_JOBS_FAILED = 3


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _share(value: str) -> float:
    """``--work-floor``: a number from 0 to 1."""
    try:
        share = float(value)
    except ValueError:
        share = math.nan
    if not 0 <= share <= 1:
        raise ConfigError(f"--work-floor must be a number from 0 (epochs per point) to 1 (equal steps), got {value!r}")
    return share


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
                   help="comma-separated: %(tasks)s (default: all)")
    p.add_argument("--datasets", type=_arg(name_list, "--datasets"),
                   help="comma-separated data set specs: %(specs)s (default: per task)")
    p.add_argument("--pipelines", type=_arg(name_list, "--pipelines"),
                   help="comma-separated pipeline ids or patterns (default: all)")
    p.add_argument("--exclude", type=_arg(name_list, "--exclude"), default=[],
                   help="pipeline ids or patterns to leave out")
    p.add_argument("--seeds", type=_arg(seed_list), default=[0], help="comma-separated seeds (default: 0)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    p.add_argument("--jobs", type=_arg(positive_int, "--jobs"), default=1,
                   help="jobs run side by side (default 1; timings of jobs that share the machine are marked)")
    p.add_argument("--threads-per-job", type=_arg(positive_int, "--threads-per-job"), default=None,
                   help="threads of each job (default: the cores over --jobs); records are identical between runs "
                        "with the same threads per job, so fix it to compare runs made with different --jobs")
    p.add_argument("--out", type=Path, help="run folder (default: results/<run-id>)")
    p.add_argument("--results-root", type=Path, default=Path("results"), help="where new runs go (default: results)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out (or the latest under --results-root), skipping recorded jobs")
    p.add_argument("--retry-failed", action="store_true", help="with --resume: run failed jobs again")
    p.add_argument("--allow-changed", action="store_true",
                   help="with --resume: continue although the configuration differs from the run's (params, splits, "
                        "code, versions...); the change is recorded in run.json and on the new records")
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
    p.add_argument("--allow-failures", action="store_true",
                   help=f"exit with status 0 when jobs failed (default: {EXIT_JOBS_FAILED}, so that scripts and CI "
                        f"notice)")


class _RunHelp(argparse.HelpFormatter):
    """``run --help``: the data set specs of the installed formats (with the synthetic set's variants), read only
    when the help is shown (the formats' modules are not imported for a run that does not ask)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        if text and "%(specs)s" in text:
            text = text.replace("%(specs)s", _dataset_specs_help())
        if text and "%(tasks)s" in text:
            text = text.replace("%(tasks)s", _task_names_help())
        return text


def _task_names_help() -> str:
    """The registered tasks (plugins included), or the built-in ones when the registry cannot be read."""
    try:
        from benchsuite.tasks.registry import task_names

        return ", ".join(task_names())
    except Exception:  # the help must show even when a task plugin is broken
        return "classification, detection, proposals, segmentation"


def _dataset_specs_help() -> str:
    try:
        from benchsuite.data import synthetic_voc
        from benchsuite.data.datasets import FORMATS

        usages = [p.obj.usage for p in FORMATS.entries() if p.obj is not None]
        variants = ", ".join(synthetic_voc.VARIANTS)
        return ", ".join(u + (f" (VARIANT: {variants})" if u.startswith("synthetic-voc") else "") for u in usages)
    except Exception:  # the help must show even when a format plugin is broken
        return "cifar10, voc2007, voc2012, voc:PATH, synthetic-voc[:VARIANT]"


def config_from_args(args: argparse.Namespace, argv: list[str]) -> Any:
    from benchsuite.runner.run import RunConfig, default_cache_dir

    env_root = os.environ.get("BENCHSUITE_DATA")
    data_root = args.data_root or (Path(env_root) if env_root else Path("data"))
    return RunConfig(
        profile=args.profile, tasks=args.tasks, datasets=args.datasets, pipelines=args.pipelines,
        exclude=args.exclude, seeds=args.seeds, device=args.device, jobs=args.jobs,
        threads_per_job=args.threads_per_job, out=args.out,
        results_root=args.results_root, resume=args.resume, retry_failed=args.retry_failed,
        allow_changed=args.allow_changed,
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

        _warn_about_environment()
        config = config_from_args(args, argv)
        if getattr(args, "axis", None):  # `benchsuite study AXIS`: the same run over a study's derived data sets
            from benchsuite.studies.axes import StudyPlan

            config.study = StudyPlan(args.axis, args.values, args.work_floor)
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
        if not args.allow_failures:
            print(f"benchsuite: {failed} record(s) failed: exit status {EXIT_JOBS_FAILED} (--allow-failures for 0)",
                  file=sys.stderr)
            return EXIT_JOBS_FAILED
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
    from benchsuite.studies.axes import AXES
    from benchsuite.tasks.registry import TASKS

    others = [(what, p) for what, group in (("task", TASKS), ("data set format", FORMATS), ("study axis", AXES))
              for p in group.entries(include_broken=True) if not p.ok]
    for what, p in others:
        print(f"broken {what} plugin {p.name} ({p.ref}, from {p.distribution}): {p.error}", file=sys.stderr)
    from benchsuite.registry import PIPELINES

    refused = [p for group in (PIPELINES, TASKS, FORMATS) for p in group.refused()]
    for p in refused:  # a plugin that claims a name another distribution (the suite itself) holds
        print(f"refused plugin {p.name} ({p.ref}, from {p.distribution}): {p.error}", file=sys.stderr)
    opencv = _warn_about_environment(show=True)
    return 1 if (broken or others or refused or opencv) and getattr(args, "strict", False) else 0


def _warn_about_environment(show: bool = False) -> str | None:
    """Print the environment's OpenCV (``show``) and, loudly, what is wrong with it (two OpenCV distributions,
    a cv2 without the contrib modules); returns the warning (None when all is well)."""
    from benchsuite.environment import cv2_environment

    env = cv2_environment()
    if show:
        print(env.line(), file=sys.stderr)
    warning = env.warning()
    if warning:
        print(f"WARNING: {warning}", file=sys.stderr)
    return warning


def _check_target(target: str) -> tuple[type, str | None]:
    """The class named by ``target`` (an installed pipeline's id, or ``module:Class``) and its registered id
    (None when it is not installed under an entry point). Only that plugin is imported."""
    from benchsuite.registry import PIPELINES, discovery_hints, find_pipeline, load_ref

    if ":" in target:
        if os.getcwd() not in sys.path:  # `benchsuite check mymodule:Class` from the folder that holds it
            sys.path.append(os.getcwd())
        try:
            cls = load_ref(target)
        except Exception as exc:
            raise ConfigError(f"cannot import {target}: {type(exc).__name__}: {exc}") from None
        pid = getattr(cls, "id", None)
        info = find_pipeline(pid) if isinstance(pid, str) and pid else None
        return cls, (pid if info is not None and info.ok and load_ref(info.ref) is cls else None)
    info = find_pipeline(target)
    if info is None:
        ok = ", ".join(PIPELINES.names())
        raise ConfigError(f"unknown pipeline {target!r}; give an installed id ({ok}) or module:Class"
                          + discovery_hints(target))
    try:
        cls = load_ref(info.ref)
    except Exception as exc:
        raise ConfigError(f"pipeline {target!r} cannot be imported ({info.ref}): {type(exc).__name__}: {exc}"
                          ) from None
    if not info.ok and getattr(cls, "id", None) != target:  # an alias: the records would carry another id
        raise ConfigError(f"pipeline {target!r} ({info.ref}, from {info.distribution}) cannot be checked under that "
                          f"name: {info.error}; rename the entry point to the class's id (or check it as "
                          f"{info.ref})")
    return cls, (target if info.ok else None)


#: the default of ``benchsuite check --time-limit``: the checks run in seconds on tiny data; this only ends a hang
CHECK_TIME_LIMIT_S = 600.0


def cmd_check(args: argparse.Namespace, argv: list[str]) -> int:
    """Conformance checks of one pipeline class (benchsuite.testing), in a child process under ``--time-limit``
    (a pipeline that hangs, even one that ignores SIGTERM, is ended with every process it started); ``--run``
    also runs it once through a worker on the smoke data."""
    cls, pid = _check_target(args.target)  # here: the child forked below finds the class (and the registry) loaded
    code = _checks_in_child(args, argv)
    if code != 0 or not args.run:
        return code
    return _check_run(cls, pid, args, _check_overrides(args))


def _check_overrides(args: argparse.Namespace) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for item in args.param:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"--param {item!r}: expected NAME=VALUE, for example k=3")
        overrides[key.strip()] = raw.strip()
    return overrides


def _checks_in_child(args: argparse.Namespace, argv: list[str]) -> int:
    """Run the checks (without ``--run``) in a child process forked from this one, ended with its whole tree after
    ``--time-limit`` seconds (a FAIL line says so); its exit status, 1 when it ran out of time. The child's output
    is copied to this process's stdout and stderr as it comes.

    The child's temporary files (the checks' data, cache and grey-image folders, and whatever the pipeline itself
    writes through :mod:`tempfile`) go in one scratch folder that this process removes once the child has ended,
    however it ended: the child leaves by ``os._exit``, which runs no ``atexit`` clean-up."""
    import shutil
    import tempfile
    import time

    from benchsuite.runner import proctree

    limit = args.time_limit
    if not (limit > 0 and limit < float("inf")):
        raise ConfigError(f"--time-limit must be a finite number of seconds above 0, got {limit}")
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    scratch = tempfile.mkdtemp(prefix="benchsuite-check-")
    restore_threads = _one_thread()
    try:
        pid = os.fork()
    except BaseException:
        restore_threads()
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    if pid == 0:  # the child: the checks, in a session of its own, as a subreaper of whatever they start
        code = 1
        try:
            os.setsid()
            tempfile.tempdir = scratch  # this process's temporary files, and (TMPDIR) those of what it starts
            os.environ["TMPDIR"] = scratch
            os.close(out_r)
            os.close(err_r)
            sys.stdout = os.fdopen(out_w, "w", buffering=1)
            sys.stderr = os.fdopen(err_w, "w", buffering=1)
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.StreamHandler):
                    handler.setStream(sys.stderr)
            proctree.become_subreaper()
            try:
                code = _check_here(args)
            except BenchsuiteError as exc:
                print(f"benchsuite: error: {exc}", file=sys.stderr)
                code = 2
            finally:
                proctree.kill_tree(os.getpid(), include_root=False)  # nothing the checks started outlives them
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    restore_threads()
    os.close(out_w)
    os.close(err_w)
    pumps = [_relay(out_r, sys.stdout), _relay(err_r, sys.stderr)]
    deadline = time.monotonic() + limit
    code = None
    try:
        while code is None:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                code = code if code >= 0 else 1
            elif time.monotonic() > deadline:
                proctree.kill_tree(pid)
                os.waitpid(pid, 0)
                print(f"  FAIL  time limit: the checks of {args.target} were still running after {limit:g} s and "
                      f"were ended with every process they started (a hang in fit, predict or a check; raise "
                      f"--time-limit if they only need longer)", flush=True)
                code = 1
            else:
                time.sleep(0.05)
    except BaseException:
        proctree.kill_tree(pid)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        raise
    finally:
        for pump in pumps:
            pump.join(timeout=5)
        shutil.rmtree(scratch, ignore_errors=True)
    return code


def _one_thread() -> Callable[[], None]:
    """Set the thread counts of torch and OpenCV, where this process has imported them, to one before the checks'
    fork (the child inherits them); returns what restores this process's counts after the fork."""
    undo: list[Callable[[], None]] = []
    torch = sys.modules.get("torch")
    if torch is not None:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        undo.append(lambda: torch.set_num_threads(before))
    cv2 = sys.modules.get("cv2")
    if cv2 is not None and hasattr(cv2, "getNumThreads"):
        cv2_before = cv2.getNumThreads()
        cv2.setNumThreads(1)
        undo.append(lambda: cv2.setNumThreads(cv2_before))

    def restore() -> None:
        for step in undo:
            step()

    return restore


def _relay(fd: int, target: Any) -> Any:
    """A started thread copying the lines read from ``fd`` (the child's output) to ``target`` (this process's stdout
    or stderr, whatever they are now), until end of file."""
    import threading

    def copy() -> None:
        with os.fdopen(fd, "rb") as source:
            for raw in iter(source.readline, b""):
                with contextlib.suppress(Exception):
                    target.write(raw.decode("utf-8", "replace"))
                    target.flush()

    thread = threading.Thread(target=copy, daemon=True, name="check-relay")
    thread.start()
    return thread


def _check_here(args: argparse.Namespace) -> int:
    """The conformance checks, in this process: one line per check, exit 1 on a failure."""
    import time

    from benchsuite.params import check_params
    from benchsuite.runner.startup import when_imported
    from benchsuite.testing import check_pipeline

    # one thread, as the checks' ctx.num_threads says: on a busy machine, threads that spin-wait between torch's
    # small operations made a tiny L-BFGS fit take minutes. A library imported before the fork was set by the
    # parent (_one_thread): changing torch's count inside a forked child can deadlock
    for name, setter in (("torch", lambda torch: torch.set_num_threads(1)), ("cv2", lambda cv2: cv2.setNumThreads(1))):
        if name not in sys.modules:
            when_imported(name, setter)
    cls, _ = _check_target(args.target)
    name = getattr(cls, "id", "") or args.target
    overrides = _check_overrides(args)
    params = check_params(name, cls, overrides) if overrides else {}
    print(f"checking {name} ({cls.__module__}:{cls.__qualname__}, task {getattr(cls, 'task', '?')}, "
          f"profile {args.profile} sizes)")
    _warn_about_environment(show=True)
    start = time.perf_counter()
    results = check_pipeline(cls, params, profile=args.profile, device=args.device)
    for r in results:
        print("  " + r.line())
    failed = [r for r in results if r.failed]
    print(f"{len(results) - len(failed)} of {len(results)} checks passed or skipped, {len(failed)} failed "
          f"({time.perf_counter() - start:.1f} s)")
    return 1 if failed else 0


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
                                     "benchmarked on the same data splits.",
                                     epilog=f"exit status: 0 ok; 1 a check failed (check, list --strict, compare "
                                            f"--fail-on-regression); 2 a bad option or a file system failure; "
                                            f"{EXIT_JOBS_FAILED} a run finished with failed jobs (run "
                                            f"--allow-failures: 0); 130 interrupted")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the benchmark and write records and a report", formatter_class=_RunHelp)
    add_run_arguments(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("study", help="sweep a data axis (train-size, resolution, corruption): every point a job, "
                                     "the report's curves and crossover", formatter_class=_RunHelp,
                       description="Run the benchmark at every point of a data axis: each point is a data set "
                                   "derived from each --datasets one (a training subset, resampled or corrupted "
                                   "images) and its jobs are ordinary jobs (own process, record, --resume, --jobs, "
                                   "--executor ray). Axes: train-size (fractions 1%,10%,100% or counts 500), "
                                   "resolution (factors 0.25,0.5,1 or longest sides 16px), corruption (severities "
                                   "1,3,5, or FAMILY-SEVERITY). The report draws the metric and the cost against "
                                   "the axis and names the crossover of the best deep and classical pipelines.")
    p.add_argument("axis", help="the axis to sweep: train-size, resolution, corruption (or a plugin's)")
    p.add_argument("--values", help="comma-separated points (default: the axis's for the profile)")
    p.add_argument("--work-floor", type=_share, default=0.25,
                   help="train-size: a point trains at least this share of the full split's training, epochs x "
                        "images (the pipeline's own epochs otherwise; 0: epochs per point, 1: the same training at "
                        "every point; default 0.25)")
    add_run_arguments(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("list", help="list the installed pipelines (and name broken task and format plugins)")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style id pattern")
    p.add_argument("--task", help="only pipelines of this task")
    p.add_argument("--strict", action="store_true", help="exit with status 1 when any installed plugin is broken "
                                                            "or the environment's OpenCV is (two cv2 distributions)")
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
    p.add_argument("--time-limit", type=float, default=CHECK_TIME_LIMIT_S,
                   help=f"seconds the checks may take before they are ended (default {CHECK_TIME_LIMIT_S:g})")
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


def _note_which_copy(script: str) -> None:
    """Log which benchsuite this process runs when the installed command would run another copy."""
    from benchsuite.environment import copy_note, imported_copy

    note = copy_note(imported_copy(), script)
    if note:
        log.warning(note)


def main(argv: list[str] | None = None, hard_exit_on_interrupt: bool = True, script: str = "benchsuite") -> int:
    """The ``benchsuite`` command (``script`` names the program for messages: ``run_all.py`` runs it too). After an
    interrupt (exit status 130) the process ends at once unless ``hard_exit_on_interrupt`` is False (for callers
    that embed the command)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except BenchsuiteError as exc:
        print(f"benchsuite: error: {exc}", file=sys.stderr)
        return 2
    setup_logging(args.verbose)
    if args.func is cmd_run:
        _note_which_copy(script)
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
