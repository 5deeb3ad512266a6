"""``--executor ray``: a run's jobs as tasks on a Ray cluster (issue 15).

The driver (the ``benchsuite run`` process) plans the run as usual, connects to a Ray cluster
(``--ray-address``, else ``$RAY_ADDRESS``, else a local Ray started for the run) and submits each job as one
Ray task that asks for what the job needs: ``num_cpus`` = the job's threads, one GPU for a job on CUDA (the
CPU-only classical pipelines never hold one), ``memory`` = ``--memory-limit-mb`` when it is given. Ray runs
as many at once as the cluster's resources allow.

One implementation of a job run: on the node Ray chose, the task runs the job through the very function the
local executor uses (:func:`benchsuite.runner.execute.run_job_dir`: the job's own worker process under its
time and memory limits, so a crashing plugin costs one job, not a Ray worker) in a temporary job folder, and
returns the folder's files (result, predictions, artifacts, log) as bytes. The driver writes them into the run
folder where the local executor puts them and evaluates and records the job as usual, so records,
``--resume`` and the report do not depend on the executor. The run folder need not be on shared storage; the
data sets must be at a path every node sees (or be synthetic, generated alike on each node), and a node whose
data fingerprint differs from the driver's fails its job with ``failure: "data"`` and a message naming the
node (:mod:`benchsuite.runner.worker`).

Faults: a task whose node (or Ray worker process) is lost is retried by Ray, at most :data:`RAY_MAX_RETRIES`
times; the record's ``executor.attempts`` counts its starts. A job that still has no result is recorded
failed (``failure: "killed"``, with the cause, so a plain ``--resume`` runs it again) and the run goes on. The
first Ctrl-C or SIGTERM cancels the queued and running tasks; jobs that finished are recorded, the others get
no record, as with the local executor. A killed driver leaves a run folder that ``--resume`` continues.

Order: the jobs are submitted in the planned order, and a job whose pipeline consumes another one's output
(:attr:`benchsuite.api.Pipeline.consumes`: ``ss-hog-svm`` and ``rcnn`` read ``selective-search``'s proposals)
is submitted only once the run's job of that pipeline on the same data set has finished
(:func:`benchsuite.runner.dependencies.prerequisites`, the local executor's rule too). The proposal-cache
entries the producer wrote on its node (up to :data:`CACHE_SHIP_LIMIT_MB`) are installed in the cache of the
node that runs the consumer, so that it finds what it would find on one machine; what that node's cache held
before the run may add more. The consumer's record counts the images it read from the cache and those it
computed (``consumed``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchsuite.errors import ConfigError
from benchsuite.proposal_cache import cache_root
from benchsuite.runner.dependencies import prerequisites
from benchsuite.runner.execute import Supervisor, run_job_dir
from benchsuite.runner.jobs import JobSpec

log = logging.getLogger(__name__)

#: how many times Ray runs a job's task again after its node or Ray worker was lost
RAY_MAX_RETRIES = 2
#: the object store of a Ray started for the run (MB): job outputs pass through it, once each
LOCAL_OBJECT_STORE_MB = 256
#: the most proposal-cache bytes (MB) a producer's task ships to the nodes of the jobs that wait for it
CACHE_SHIP_LIMIT_MB = 1024
#: seconds between the driver's looks at the cluster (new starts, finished tasks)
POLL_S = 0.25
#: seconds between checks that a queued job still fits some live node
FEASIBLE_CHECK_S = 5.0
#: the resource Ray gives the head node only (where the driver's progress board lives: it outlives workers)
HEAD_RESOURCE = "node:__internal_head__"


@dataclass
class NodeInfo:
    """One node of the cluster: Ray's view of it (resources) and the node's own (CPU model, cores, GPU names)."""

    node_id: str
    host: str
    ip: str
    cpus: float  # Ray's CPU resource of the node
    gpus: float  # Ray's GPU resource of the node
    memory_mb: float  # Ray's memory resource of the node (what tasks may reserve), MB
    accelerator: str | None = None  # Ray's accelerator type (e.g. "A100"), when it detected one
    cpu: str | None = None  # CPU model, from the node's /proc/cpuinfo
    cores: int | None = None  # the node machine's logical cores
    gpu_names: list[str] = field(default_factory=list)  # from nvidia-smi on the node, when there is one
    head: bool = False  # the head node (Ray's node:__internal_head__ resource)

    @property
    def label(self) -> str:
        """``host (first 8 hex of the node id)``: nodes of one machine share a host name."""
        return f"{self.host} ({self.node_id[:8]})"

    def fits(self, cpus: float, gpus: float, memory_mb: float) -> bool:
        return self.cpus >= cpus and self.gpus >= gpus and (memory_mb <= 0 or self.memory_mb >= memory_mb)


def node_facts() -> dict[str, Any]:
    """What a node says about its machine (run in a Ray task on that node): host, CPU model, logical cores,
    GPU names (``nvidia-smi``, when present; torch is not imported for it)."""
    from benchsuite.results.provenance import cpu_model

    names: list[str] = []
    smi = shutil.which("nvidia-smi")
    if smi:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=10)
            names = [ln.strip() for ln in out.stdout.splitlines() if ln.strip()] if out.returncode == 0 else []
    return {"host": socket.gethostname(), "cpu": cpu_model(), "cores": os.cpu_count(), "gpu_names": names}


class ProgressBoard:
    """A Ray actor on the driver's node that each job's task tells when it starts (and where), so that the
    driver can show what runs where, and count a job's attempts: a task that Ray retries starts again."""

    def __init__(self) -> None:
        self._starts: dict[str, int] = {}
        self._events: list[tuple[str, dict[str, Any], int]] = []

    def started(self, job_id: str, node: dict[str, Any]) -> int:
        """Note a start of ``job_id`` on ``node``; returns the attempt number (1 for the first start)."""
        attempt = self._starts.get(job_id, 0) + 1
        self._starts[job_id] = attempt
        self._events.append((job_id, node, attempt))
        return attempt

    def drain(self) -> list[tuple[str, dict[str, Any], int]]:
        """The starts noted since the last call: ``(job id, node, attempt)``."""
        events, self._events = self._events, []
        return events


class RayCluster:
    """The driver's connection to a Ray cluster for one run: its nodes, and how jobs are sized for them."""

    def __init__(self, ray: Any, address: str | None, started_here: bool, connected_here: bool):
        self.ray = ray
        self.address = address
        self.started_here = started_here  # a local Ray started for this run (stopped by close)
        self.connected_here = connected_here  # ray.init was called by this object (ray.shutdown by close)
        self.nodes = self.alive_nodes()
        if not self.nodes:
            raise ConfigError(f"the Ray cluster at {address or 'this machine'} has no live node")
        self._probe_nodes()

    @classmethod
    def connect(cls, address: str | None = None) -> RayCluster:
        """Connect with Ray's conventions: ``address`` (``host:port``, ``auto``, ``ray://...``), else
        ``$RAY_ADDRESS``, else start a local Ray for the run (no dashboard, a small object store, quiet logs).
        A Ray already initialised in this process (an embedding program, a test) is used as it is."""
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray needs the ray package on the driver and on every node: "
                              "pip install 'benchsuite[ray]'") from None
        address = (address or os.environ.get("RAY_ADDRESS") or "").strip() or None
        if ray.is_initialized():
            log.info("ray: using this process's Ray connection")
            return cls(ray, address, started_here=False, connected_here=False)
        quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
        try:
            if address:
                log.info("ray: connecting to the cluster at %s", address)
                ray.init(address=address, **quiet)
            else:
                log.info("ray: starting a local Ray for this run (no RAY_ADDRESS, no --ray-address)")
                ray.init(address="local", include_dashboard=False,  # "local": never a cluster found here
                         object_store_memory=LOCAL_OBJECT_STORE_MB * 2**20, **quiet)
        except Exception as exc:
            where = f"connect to the Ray cluster at {address}" if address else "start a local Ray"
            raise ConfigError(f"--executor ray: cannot {where}: {type(exc).__name__}: {exc}") from None
        try:
            return cls(ray, address, started_here=address is None, connected_here=True)
        except BaseException:
            ray.shutdown()
            raise

    def close(self) -> None:
        """Disconnect (which also stops a local Ray started for the run); a connection made by someone else is
        left open."""
        if self.connected_here:
            with contextlib.suppress(Exception):
                self.ray.shutdown()
            self.connected_here = False

    # ------------------------------------------------------------------------------------------ nodes
    def alive_nodes(self) -> list[NodeInfo]:
        """The cluster's live nodes, from Ray's node table."""
        nodes = []
        for n in self.ray.nodes():
            if not n.get("Alive"):
                continue
            res = n.get("Resources") or {}
            accelerator = next((k.split(":", 1)[1] for k in res if k.startswith("accelerator_type:")), None)
            nodes.append(NodeInfo(node_id=str(n.get("NodeID")), host=str(n.get("NodeManagerHostname") or "?"),
                                  ip=str(n.get("NodeManagerAddress") or "?"), cpus=float(res.get("CPU", 0)),
                                  gpus=float(res.get("GPU", 0)), memory_mb=float(res.get("memory", 0)) / 2**20,
                                  accelerator=accelerator, head=HEAD_RESOURCE in res))
        return nodes

    def _probe_nodes(self, timeout_s: float = 60.0) -> None:
        """Ask each node for its CPU model, cores and GPU names (a tiny task pinned to it, holding no CPU)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        probe = self.ray.remote(node_facts)
        refs = {probe.options(num_cpus=0, max_retries=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
            node_id=n.node_id, soft=False)).remote(): n for n in self.nodes}
        ready, _ = self.ray.wait(list(refs), num_returns=len(refs), timeout=timeout_s)
        for ref in ready:
            node = refs[ref]
            try:
                facts = self.ray.get(ref)
            except Exception as exc:  # the node's facts are provenance, not a reason to stop
                log.warning("ray: node %s did not describe itself (%s)", node.label, exc)
                continue
            node.cpu, node.cores, node.gpu_names = facts["cpu"], facts["cores"], facts["gpu_names"]
            node.host = facts["host"] or node.host
        for ref in set(refs) - set(ready):
            log.warning("ray: node %s did not describe itself within %.0f s", refs[ref].label, timeout_s)
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)

    def info(self) -> dict[str, Any]:
        """run.json's ``executor``: Ray, the address, and every node (CPU model, cores, GPUs, resources)."""
        return {
            "name": "ray",
            "address": self.address or ("a local Ray started for the run" if self.started_here
                                        else "this process's Ray connection"),
            "ray_version": getattr(self.ray, "__version__", None),
            "max_retries": RAY_MAX_RETRIES,
            "nodes": [{"node": n.host, "node_id": n.node_id, "ip": n.ip, "cpu": n.cpu, "cores": n.cores,
                       "ray_cpus": n.cpus, "gpus": n.gpus, "gpu_names": n.gpu_names or None,
                       "accelerator": n.accelerator, "ray_memory_mb": round(n.memory_mb)} for n in self.nodes],
        }

    def describe(self) -> str:
        """One line: the nodes with their CPUs and GPUs."""
        parts = [f"{n.label} {n.cpus:g} CPU" + (f", {n.gpus:g} GPU" if n.gpus else "") for n in self.nodes]
        return f"{len(self.nodes)} node(s): " + "; ".join(parts)

    # ------------------------------------------------------------------------------------------ sizing
    def resolve_device(self, requested: str) -> str:
        """``auto`` becomes ``cuda`` when some node has a GPU (Ray's GPU resource), else ``cpu``; ``cuda``
        without a GPU in the cluster is an error (the driver itself needs none)."""
        from benchsuite.device import CHOICES

        if requested not in CHOICES:
            raise ConfigError(f"unknown device {requested!r}; expected one of: {', '.join(CHOICES)}")
        gpus = sum(n.gpus for n in self.nodes)
        if requested == "auto":
            return "cuda" if gpus else "cpu"
        if requested == "cuda" and not gpus:
            raise ConfigError("--device cuda was asked for, but no node of the Ray cluster has a GPU; "
                              "use --device cpu or auto")
        return requested

    def threads_per_job(self, jobs_per_node: int) -> int:
        """A job's threads (= its Ray CPUs): the smallest node's CPUs divided by ``--jobs`` (jobs side by side
        on a node), so that every job fits every node."""
        cpus = [n.cpus for n in self.nodes if n.cpus >= 1]
        if not cpus:
            raise ConfigError("no node of the Ray cluster offers a CPU to tasks")
        return max(1, int(min(cpus)) // max(1, jobs_per_node))

    def prepare(self, job: JobSpec, jobs_per_node: int, memory_limit_mb: float | None,
                threads: int | None = None) -> JobSpec:
        """``job`` sized for the cluster: ``threads`` (``--threads-per-job``), else :meth:`threads_per_job`;
        memory limit the one given (else None: the node sets 90% of its RAM over the jobs that fit it); no
        progress bars (nobody watches a node's terminal)."""
        most = self.threads_per_job(1)
        if threads is not None and threads > most:  # a task asking more CPUs than any node has never starts
            raise ConfigError(f"--threads-per-job {threads} is more than the {most} CPUs the smallest node of the Ray "
                              f"cluster offers; use at most {most}")
        threads = threads or self.threads_per_job(jobs_per_node)
        shared = jobs_per_node > 1 or any(n.cpus >= 2 * threads for n in self.nodes)
        return replace(job, num_threads=threads, memory_limit_mb=memory_limit_mb, shared_machine=shared,
                       progress=False, extra=dict(job.extra))

    def check_memory(self, memory_limit_mb: float | None) -> None:
        """A ``--memory-limit-mb`` that no node can reserve would leave every job queued for ever."""
        if not memory_limit_mb:
            return
        largest = max((n.memory_mb for n in self.nodes), default=0.0)
        if largest < memory_limit_mb:
            raise ConfigError(f"--memory-limit-mb {memory_limit_mb:.0f}: no node of the Ray cluster offers that "
                              f"much memory to tasks (the largest offers {largest:.0f} MB)")


def task_options(job: JobSpec) -> dict[str, Any]:
    """The Ray task options of a job: its CPUs, a GPU when it runs on CUDA, its memory, bounded retries."""
    options: dict[str, Any] = {"num_cpus": job.num_threads, "max_retries": RAY_MAX_RETRIES, "num_returns": 2,
                               "name": f"benchsuite {job.job_id}"}
    if job.device.startswith("cuda"):
        options["num_gpus"] = 1
    if job.memory_limit_mb:
        options["memory"] = int(job.memory_limit_mb * 2**20)
    return options


# ------------------------------------------------------------------------------------------------ on the node


def run_on_node(fields: dict[str, Any], board: Any, ship_proposals: bool, *proposals: list[tuple[str, bytes]]
                ) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    """The body of a job's Ray task, on the node Ray chose.

    ``fields`` is the driver's :class:`JobSpec` as a dict; ``board`` the run's :class:`ProgressBoard`; with
    ``ship_proposals`` the proposal-cache entries the job writes are returned; ``proposals``: the entries of
    the job this one waited for, to install first (Ray fetched them before the task started). The job runs in a
    temporary folder through :func:`run_job_dir`. Returns ``({"result", "files", "job"}, proposal entries)``:
    the worker's result with an ``executor`` block (node, node id), the job folder's files as bytes (relative
    path -> content, ``job.json`` left out) and the job as it ran here.

    Nothing here waits on another task or actor: a task blocked in ``ray.get`` lends its CPUs to other tasks,
    and the job would then share its node's cores with more jobs than it asked for.
    """
    import ray

    node = {"node": socket.gethostname(), "node_id": ray.get_runtime_context().get_node_id(),
            "ip": ray.util.get_node_ip_address()}
    board.started.remote(fields["job_id"], node)  # not waited for (see above)
    folder = Path(tempfile.mkdtemp(prefix=f"benchsuite-{fields['run_id']}-{fields['job_id']}"[:120] + "-"))
    try:
        extra = {**(fields.get("extra") or {}), "node": f"{node['node']} ({node['node_id'][:8]})"}
        job = JobSpec(**{**fields, "job_dir": str(folder), "extra": extra})
        if job.memory_limit_mb is None:  # the local executor's default, for this node's machine
            import psutil

            slots = max(1, (os.cpu_count() or 1) // max(1, job.num_threads))
            job.memory_limit_mb = psutil.virtual_memory().total / 2**20 * 0.9 / slots
        for entries in proposals:
            install_proposals(Path(job.cache_dir), entries)
        since_ns = time.time_ns()
        result = run_job_dir(job)
        result["executor"] = {"name": "ray", **node}  # the driver adds the attempts (the board's count)
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
                 if p.is_file() and not p.is_symlink() and p.name != "job.json"}  # a link is not the job's file
        entries = new_proposals(Path(job.cache_dir), since_ns) if ship_proposals else []
        return {"result": result, "files": files, "job": asdict(job)}, entries
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def new_proposals(cache_dir: Path, since_ns: int, limit_mb: float = CACHE_SHIP_LIMIT_MB
                  ) -> list[tuple[str, bytes]]:
    """Proposal-cache entries (``<proposer key>/<content key>.npy`` under ``cache_dir/proposals``) written
    since ``since_ns`` (ns since the epoch), as ``(relative path, bytes)``; at most ``limit_mb`` MB."""
    root = cache_root(cache_dir)
    out: list[tuple[str, bytes]] = []
    total = 0
    if not root.is_dir():
        return out
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "files"):
        for path in sorted(folder.glob("*.npy")):
            with contextlib.suppress(OSError):
                st = path.stat()
                if st.st_mtime_ns < since_ns:
                    continue
                total += st.st_size
                if total > limit_mb * 2**20:
                    log.warning("proposal cache: over %.0f MB written; the rest is not shipped", limit_mb)
                    return out
                out.append((f"{folder.name}/{path.name}", path.read_bytes()))
    return out


def install_proposals(cache_dir: Path, entries: Sequence[tuple[str, bytes]]) -> int:
    """Write proposal-cache ``entries`` (``(relative path, bytes)``) into ``cache_dir/proposals``; entries
    already there are kept, and one that cannot be written is left to the job to compute. Returns how many
    were written."""
    from benchsuite.results.atomic import atomic_write_bytes

    written = 0
    root = cache_root(cache_dir)
    for rel, data in entries:
        path = root / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute() or path.exists():
            continue
        with contextlib.suppress(OSError):
            atomic_write_bytes(path, data)
            written += 1
    return written


# ------------------------------------------------------------------------------------------------ the driver


@dataclass
class _Task:
    """A submitted job: its task's references, and whether (and where) it started."""

    job: JobSpec
    out: Any  # the task's first return: {"result", "files", "job"}
    proposals: Any  # its second: the proposal-cache entries it shipped
    node: dict[str, Any] | None = None
    attempts: int = 0
    started_at: str | None = None


def run_jobs_on_ray(cluster: RayCluster, jobs: Sequence[JobSpec], config: Any,
                    finish: Callable[[JobSpec, dict[str, Any]], None], supervisor: Supervisor) -> list[JobSpec]:
    """Run ``jobs`` as Ray tasks on ``cluster``; ``finish(job, result)`` is called in this thread, one job at a
    time, in completion order, once the job's files are in its job folder (``job.job_dir``, in the run folder).

    ``config`` is the run's :class:`benchsuite.runner.run.RunConfig` (``jobs``: jobs side by side on a node,
    ``memory_limit_mb``). On the supervisor's stop the tasks are cancelled; a job that finished meanwhile is
    still finished. Returns the jobs that were not finished (cancelled, then never submitted), like
    :func:`benchsuite.runner.execute.run_jobs`. An exception in ``finish`` cancels every task and is raised.
    """
    cluster.check_memory(config.memory_limit_mb)
    prepared = [cluster.prepare(j, config.jobs, config.memory_limit_mb, config.threads_per_job) for j in jobs]
    driver = _Driver(cluster, prepared, finish)
    try:
        return driver.run(supervisor)
    except BaseException:  # a record that cannot be written, a second Ctrl-C: no task outlives the run
        driver.cancel_all()
        raise


class _Driver:
    """The driver's loop of :func:`run_jobs_on_ray`: submit, show starts, collect, release waiting jobs."""

    def __init__(self, cluster: RayCluster, jobs: list[JobSpec], finish: Callable[[JobSpec, dict[str, Any]], None]):
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.ray = cluster.ray
        self.cluster = cluster
        self.jobs = jobs
        self.finish = finish
        self.after = prerequisites(jobs)  # consumer job id -> the producer job ids it waits for
        self.producers = {p for producers in self.after.values() for p in producers}
        self.waiting = {j.job_id: j for j in jobs if j.job_id in self.after}
        self.finished: set[str] = set()
        self.running: dict[Any, _Task] = {}  # by the task's first reference
        self.by_id: dict[str, _Task] = {}
        self.shipped: dict[str, Any] = {}  # producer job id -> reference to its proposal-cache entries
        self.done = 0
        # the board lives on the head node (or, without one, the driver's), restarted elsewhere if its node is
        # lost: the driver counts the starts it reports itself, so a restart loses no attempt
        if any(n.head for n in cluster.nodes):
            where: dict[str, Any] = {"resources": {HEAD_RESOURCE: 0.001}}
        else:
            where = {"scheduling_strategy": NodeAffinitySchedulingStrategy(
                node_id=self.ray.get_runtime_context().get_node_id(), soft=True)}
        self.board = self.ray.remote(ProgressBoard).options(num_cpus=0, max_restarts=-1, max_task_retries=-1,
                                                            **where).remote()
        self.task = self.ray.remote(run_on_node)

    # ------------------------------------------------------------------------------------------ states
    def counts(self) -> str:
        started = sum(t.node is not None for t in self.running.values())
        queued = len(self.running) - started + len(self.waiting)
        return f"[{self.done} done, {started} running, {queued} queued of {len(self.jobs)}]"

    def submit(self, job: JobSpec) -> None:
        sources = [self.shipped[p] for p in self.after.get(job.job_id, ()) if p in self.shipped]
        out, proposals = self.task.options(**task_options(job)).remote(
            asdict(job), self.board, job.job_id in self.producers, *sources)
        self.running[out] = self.by_id[job.job_id] = _Task(job, out, proposals)

    def show_starts(self) -> None:
        """Log the starts the tasks reported since the last look (node, attempt)."""
        try:
            events = self.ray.get(self.board.drain.remote(), timeout=30)
        except Exception as exc:  # the display is not worth stopping the run for
            log.debug("ray: progress board unavailable: %s", exc)
            return
        for job_id, node, attempt in events:
            t = self.by_id.get(job_id)
            if t is None:
                continue
            # each event is one start (a board restarted on another node counts from 1 again)
            t.node, t.attempts = node, max(t.attempts + 1, attempt)
            t.started_at = t.started_at or _now()
            j = t.job
            log.info("%s running %s: %s on %s (seed %d, %s) on node %s%s", self.counts(), j.task, j.pipeline,
                     j.dataset, j.seed, j.device, _label(node), f", attempt {t.attempts}" if t.attempts > 1 else "")

    def complete(self, t: _Task, result: dict[str, Any]) -> None:
        """Finish a job (record it) and submit the jobs that waited for it."""
        self.done += 1
        j = t.job
        node = result.get("executor") or t.node
        log.info("%s done %s: %s on %s (seed %d) on node %s: %s", self.counts(), j.task, j.pipeline, j.dataset,
                 j.seed, _label(node), result.get("status"))
        self.finish(j, result)
        self.finished.add(j.job_id)
        if j.job_id in self.producers:
            if result.get("status") == "ok":
                self.shipped[j.job_id] = t.proposals
            ready = [k for k in self.waiting if self.finished.issuperset(self.after[k])]
            for job_id in ready:  # in the planned order (waiting keeps it)
                self.submit(self.waiting.pop(job_id))

    # ------------------------------------------------------------------------------------------ the loop
    def run(self, supervisor: Supervisor) -> list[JobSpec]:
        for job in self.jobs:
            if job.job_id not in self.waiting:
                self.submit(job)
        log.info("ray: %d job(s) queued (%d of them wait for the output of another job), %d thread(s) each, on %s",
                 len(self.jobs), len(self.waiting), self.jobs[0].num_threads if self.jobs else 0,
                 self.cluster.describe())
        last_check = time.monotonic()
        while self.running:
            if supervisor.stop.is_set():
                return [*self.stop(), *self.waiting.values()]
            ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=POLL_S)
            if ready and len(self.running) > 1:  # take every task that has finished
                ready, _ = self.ray.wait(list(self.running), num_returns=len(self.running), timeout=0)
            self.show_starts()
            for ref in ready:
                t = self.running.pop(ref)
                self.complete(t, self.result(t))
            if time.monotonic() - last_check > FEASIBLE_CHECK_S:
                last_check = time.monotonic()
                self.fail_unplaceable()
        return list(self.waiting.values())

    def result(self, t: _Task) -> dict[str, Any]:
        """A finished task's result: the job's own (its files written into the run folder), or, when the task
        itself failed, a failed result that names the cause."""
        from ray.exceptions import RayError, RayTaskError

        try:
            result = _outputs(t.job, self.ray.get(t.out))
            executor = result.setdefault("executor", {"name": "ray"})  # the task's count, or the driver's
            executor["attempts"] = max(t.attempts, 1)
            return result
        except RayTaskError as exc:  # the task's own code raised: the job could not be run on its node
            cause = str(getattr(exc, "cause", None) or exc).strip().splitlines()
            return _failed(t, "executor", f"the job's Ray task failed on node {_label(t.node)}: "
                                          f"{cause[-1] if cause else type(exc).__name__}")
        except RayError as exc:  # the node or the Ray worker was lost, more often than Ray retries
            self.show_starts()
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            return _failed(t, "killed", f"node lost: the job's Ray task ended without a result after "
                                        f"{max(1, t.attempts)} attempt(s), the last on node {_label(t.node)} "
                                        f"({type(exc).__name__}: {first}); --resume runs it again")

    def stop(self) -> list[JobSpec]:
        """The run's stop: cancel every task (its Ray worker is killed, and with it the job's process tree); a
        job that finished meanwhile is still finished. Returns the jobs that were not."""
        self.cancel_all()
        refs = list(self.running)
        ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=5) if refs else ([], [])
        not_run = []
        for ref in refs:
            t = self.running.pop(ref)
            out = None
            if ref in ready:
                with contextlib.suppress(Exception):
                    out = self.ray.get(ref, timeout=5)
            if out is None:
                not_run.append(t.job)
            else:
                self.done += 1
                self.finish(t.job, _outputs(t.job, out))
        log.info("ray: stopped; %d job(s) cancelled", len(not_run))
        return not_run

    def cancel_all(self) -> None:
        for ref in self.running:
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)

    def fail_unplaceable(self) -> None:
        """A queued job that no live node can hold any more (the only GPU node was lost, say) would wait for
        ever: cancel it and record it failed with the cause."""
        try:
            nodes = self.cluster.alive_nodes()
        except Exception:
            return
        for ref, t in list(self.running.items()):
            j = t.job
            gpus = 1.0 if j.device.startswith("cuda") else 0.0
            if t.node is not None or any(n.fits(j.num_threads, gpus, j.memory_limit_mb or 0) for n in nodes):
                continue
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)
            self.running.pop(ref)
            needs = f"{j.num_threads} CPU(s)" + (", a GPU" if gpus else "") + (
                f", {j.memory_limit_mb:.0f} MB" if j.memory_limit_mb else "")
            self.complete(t, _failed(t, "killed", f"no live node of the Ray cluster can run it any more (it "
                                                  f"needs {needs}); --resume runs it again"))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _label(node: dict[str, Any] | None) -> str:
    """``host (node id's first 8 hex)`` of a node block."""
    if not node:
        return "?"
    return f"{node.get('node')} ({str(node.get('node_id'))[:8]})"


def _failed(t: _Task, failure: str, error: str) -> dict[str, Any]:
    """A failed result for a job whose task gave none."""
    return {"status": "failed", "failure": failure, "error": error, "started_at": t.started_at,
            "finished_at": _now(), "executor": {"name": "ray", **(t.node or {}), "attempts": t.attempts}}


def _outputs(job: JobSpec, out: dict[str, Any]) -> dict[str, Any]:
    """Write a finished task's files into the job's folder of the run folder, where the local executor's worker
    writes them (``log.txt`` appended to, the others replaced, ``result.json`` last), and return its result."""
    from benchsuite.results.atomic import atomic_write_bytes
    from benchsuite.results.safe_paths import UnsafePathError, relative_inside

    job_dir = Path(job.job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    for stale in job_dir.glob("result.json"):
        stale.unlink()
    JobSpec(**{**out["job"], "job_dir": job.job_dir}).write()
    files: dict[str, bytes] = out["files"]
    for rel in sorted(files, key=lambda r: r == "result.json"):
        try:
            path = relative_inside(job_dir, rel, "output file")
        except UnsafePathError:
            log.warning("%s: ignoring an output outside the job folder: %r", job.job_id, rel)
            continue
        if rel == "log.txt":
            with open(path, "ab") as f:
                f.write(files[rel])
        else:
            atomic_write_bytes(path, files[rel])
    return out["result"]
