"""Declared dependencies between pipelines (``Pipeline.consumes``): the plan's producer of each consumer, the one
topological order both executors use, the local scheduler's wait with ``--jobs 2``, and the clear errors for an
unknown or circular declaration (issue 21, part 4)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

from benchsuite.api import Detector, check_pipeline_class
from benchsuite.errors import ConfigError
from benchsuite.measure.cache_use import consumed_block
from benchsuite.runner.dependencies import check_consumed, find_cycle, order_jobs, prerequisites, producer_jobs
from benchsuite.runner.execute import Supervisor, run_jobs
from benchsuite.runner.run import RunConfig, Runner


@dataclass
class Job:
    """What the dependency functions read of a :class:`benchsuite.runner.jobs.JobSpec`."""

    pipeline: str
    dataset: str = "voc"
    seed: int = 0
    consumes: dict[str, str | None] = field(default_factory=dict)
    task: str = "detection"
    device: str = "cpu"

    @property
    def job_id(self) -> str:
        return f"{self.pipeline}@{self.dataset}s{self.seed}"


def test_a_consumer_gets_the_lowest_seed_producer_of_its_data_set_or_none():
    jobs = [Job("ss"), Job("ss", seed=1), Job("ss", dataset="other"), Job("rcnn"), Job("other-det")]
    assert producer_jobs(Job("rcnn"), ("ss",), jobs[::-1]) == {"ss": "ss@voc" + "s0"}
    assert producer_jobs(Job("rcnn", dataset="other"), ("ss",), jobs) == {"ss": "ss@others0"}
    assert producer_jobs(Job("rcnn", dataset="third"), ("ss",), jobs) == {"ss": None}  # computes it itself


def test_producers_run_first_and_everything_else_keeps_its_place():
    jobs = [Job("mean-box"), Job("rcnn", consumes={"ss": "ss@voc" + "s0"}),
            Job("ssvm", consumes={"ss": "ss@voc" + "s0"}), Job("null"), Job("ss"),
            Job("late", consumes={"ss": "absent"})]  # its producer was recorded by an earlier session
    ordered = [j.pipeline for j in order_jobs(jobs)]
    assert ordered == ["mean-box", "null", "ss", "rcnn", "ssvm", "late"]
    assert prerequisites(jobs) == {"rcnn@voc" + "s0": ["ss@voc" + "s0"], "ssvm@voc" + "s0": ["ss@voc" + "s0"]}
    for i, job in enumerate(order_jobs(jobs)):  # brute force: no job before one it waits for
        assert not set(prerequisites(jobs).get(job.job_id, [])) & {j.job_id for j in order_jobs(jobs)[i:]}


def test_unknown_and_circular_declarations_are_config_errors():
    check_consumed({"rcnn": ("ss",), "ss": ()}, {"rcnn", "ss"})
    with pytest.raises(ConfigError, match=r"rcnn consumes the output of 'sss', which is not a registered pipeline"):
        check_consumed({"rcnn": ("sss",)}, {"rcnn", "ss"})
    with pytest.raises(ConfigError, match=r"in a loop \(a -> b -> c -> a\)"):
        check_consumed({"a": ("b",), "b": ("c",), "c": ("a",), "d": ("a",)}, {"a", "b", "c", "d"})
    assert find_cycle({"a": ["b"], "b": []}) == []


def test_the_declaration_is_checked_with_the_class():
    class Reads(Detector):
        id, family, consumes = "reads", "classical", ("selective-search",)

        def fit(self, train, val, ctx):
            return self

        def detect(self, image):
            raise NotImplementedError

    class Bad(Reads):
        consumes = "selective-search"  # a string, not a tuple

    class Itself(Reads):
        consumes = ("reads",)

    assert check_pipeline_class(Reads) == []
    assert any("consumes must be a tuple of pipeline ids" in p for p in check_pipeline_class(Bad))
    assert any("names the pipeline itself" in p for p in check_pipeline_class(Itself))


def _plan(tmp_path, cache_dir, pipelines, seeds=(0,)):
    cfg = RunConfig(profile="smoke", tasks=["detection", "proposals"], pipelines=pipelines, seeds=list(seeds),
                    device="cpu", out=tmp_path / "run", cache_dir=cache_dir, data_root=tmp_path / "none")
    return Runner(cfg).plan()


def test_the_plan_runs_selective_search_before_the_detector_that_reads_its_proposals(tmp_path, cache_dir):
    plan = _plan(tmp_path, cache_dir, ["ss-hog-svm", "selective-search", "mean-box"], seeds=(1, 0))
    ids = [j.job_id for j in plan.jobs]
    producer = "proposals--synthetic-voc--selective-search--s0"
    assert ids.index(producer) < ids.index("detection--synthetic-voc--ss-hog-svm--s1")
    assert ids.index(producer) < ids.index("detection--synthetic-voc--ss-hog-svm--s0")
    assert ids[0] == "detection--synthetic-voc--mean-box--s1"  # nothing else moved
    by_id = {j.job_id: j for j in plan.jobs}
    assert by_id["detection--synthetic-voc--ss-hog-svm--s1"].consumes == {"selective-search": producer}
    assert by_id["detection--synthetic-voc--mean-box--s0"].consumes == {}
    # the reverse: the producer knows both consumers (each seed's), whom it proposes train and val images for
    assert sorted(by_id[producer].consumers) == ["detection--synthetic-voc--ss-hog-svm--s0",
                                                 "detection--synthetic-voc--ss-hog-svm--s1"]
    assert by_id[producer].consumer_loads == [["train", 24], ["val", 8]]  # smoke's detection budget, once
    assert by_id["proposals--synthetic-voc--selective-search--s1"].consumers == []  # not the lowest seed
    assert by_id["detection--synthetic-voc--mean-box--s0"].consumers == []
    alone = _plan(tmp_path, cache_dir, ["ss-hog-svm"])  # no producer in the run: the job computes the proposals itself
    assert [j.consumes for j in alone.jobs] == [{"selective-search": None}]


@pytest.mark.parametrize(("attribute", "message"), [
    (("no-such-pipeline",), "consumes the output of 'no-such-pipeline', which is not a registered pipeline"),
    (("ss-hog-svm",), "in a loop (ss-hog-svm -> selective-search -> ss-hog-svm)"),
])
def test_a_bad_declaration_stops_the_run_before_any_job(tmp_path, cache_dir, monkeypatch, attribute, message):
    from pipelines.classical.selective_search import SelectiveSearch
    from pipelines.classical.ss_hog_svm import SelectiveSearchHogSVM

    target = SelectiveSearchHogSVM if attribute[0] != "ss-hog-svm" else SelectiveSearch
    monkeypatch.setattr(target, "consumes", attribute)
    with pytest.raises(ConfigError) as err:
        _plan(tmp_path, cache_dir, ["ss-hog-svm", "selective-search"])
    assert message in str(err.value)
    assert not (tmp_path / "run").exists()


def test_with_two_at_a_time_a_consumer_starts_only_after_its_producer_finished():
    """The producer runs beside an independent job; the consumer, next in line, waits until the producer ends."""
    producer, consumer, other = Job("ss"), Job("rcnn", consumes={"ss": "ss@voc" + "s0"}), Job("mean-box")
    events: list[str] = []
    lock = threading.Lock()
    other_started = threading.Event()

    def run_one(job: Job) -> dict:
        with lock:
            events.append(f"start {job.pipeline}")
        if job is other:
            other_started.set()
        if job is producer:
            assert other_started.wait(10), "the independent job did not start beside the producer"
        with lock:
            events.append(f"end {job.pipeline}")
        return {"status": "ok"}

    finished: list[str] = []
    jobs = [producer, consumer, other]
    not_run = run_jobs(jobs, 2, run_one, lambda job, result: finished.append(job.pipeline), Supervisor(),
                       after=prerequisites(jobs))
    assert not_run == [] and sorted(finished) == ["mean-box", "rcnn", "ss"]
    assert events.index("start mean-box") < events.index("end ss") < events.index("start rcnn")


def test_the_record_block_names_the_producer_and_counts_zero_when_nothing_was_read():
    used = {"selective-search": {"cached_images": 16, "computed_images": 32, "read_s": 0.01, "compute_s": 9.0},
            "other": {"cached_images": 1, "computed_images": 0, "read_s": 0.0, "compute_s": 0.0}}
    block = consumed_block({"selective-search": "proposals--voc--selective-search--s0", "third": None}, used)
    assert block["selective-search"] == {**used["selective-search"], "declared": True,
                                         "producer_job": "proposals--voc--selective-search--s0"}
    assert block["third"] == {"cached_images": 0, "computed_images": 0, "read_s": 0.0, "compute_s": 0.0,
                              "producer_job": None, "declared": True}
    assert block["other"]["declared"] is False and block["other"]["producer_job"] is None
