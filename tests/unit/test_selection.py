"""Choosing on val (:meth:`benchsuite.api.Context.select`): the one rule, what is recorded, and that every built-in
pipeline chooses through it (an AST scan of ``pipelines/``)."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchsuite.api import Choice, Context
from benchsuite.selection import best_index, choose

ROOT = Path(__file__).resolve().parents[2]


def kept_by_hand(scores: list[float | None]) -> int:
    """The rule written out: the first index holding the largest finite score; 0 when none is finite."""
    finite = [i for i, s in enumerate(scores) if s is not None and math.isfinite(s)]
    if not finite:
        return 0
    top = max(scores[i] for i in finite)
    return min(i for i in finite if scores[i] == top)


@given(st.lists(st.one_of(st.none(), st.sampled_from([0.0, 0.25, 0.5, math.nan, math.inf, -math.inf]),
                          st.floats(0, 1)), min_size=1, max_size=12))
def test_rule_keeps_the_first_best_defined_score(scores):
    grid = [{"i": i} for i in range(len(scores))]
    choice = choose(grid, lambda s: scores[s["i"]])
    assert choice.index == kept_by_hand(scores) == best_index(scores)
    assert choice.settings == {"i": choice.index}
    assert choice.scores == [s if s is not None and math.isfinite(s) else None for s in scores]


def test_ties_go_to_the_first_candidate_and_undefined_ranks_last():
    grid = [{"t": t} for t in (0.3, 0.5, 0.7)]
    assert choose(grid, lambda s: {0.3: 0.4, 0.5: 0.6, 0.7: 0.6}[s["t"]]).settings == {"t": 0.5}
    assert choose(grid, lambda s: {0.3: None, 0.5: math.nan, 0.7: 0.0}[s["t"]]).settings == {"t": 0.7}
    undefined = choose(grid, lambda s: None)
    assert (undefined.index, undefined.score, undefined.scores) == (0, None, [None, None, None])


def test_payload_of_the_kept_candidate_only_and_each_candidate_scored_once_in_order():
    seen = []

    def fit(s):
        seen.append(s["C"])
        return {0.1: 0.2, 1.0: 0.9, 10.0: 0.5}[s["C"]], f"model C={s['C']}"

    choice = choose([{"C": c} for c in (0.1, 1.0, 10.0)], fit)
    assert seen == [0.1, 1.0, 10.0]
    assert (choice.payload, choice.score, choice.index) == ("model C=1.0", 0.9, 1)


def test_inner_choice_adds_its_settings_and_records_nothing():
    ctx = Context()

    def with_step(s):  # for each step an unrecorded choice of threshold, as hog-svm-det does
        return ctx.select([{"thr": t} for t in (0.0, -1.0)], lambda t: s["step"] * (1 + t["thr"]), metric="val_map50",
                          record=False)

    choice = ctx.select([{"step": 0.2}, {"step": 0.4}], with_step, metric="val_map50")
    assert choice.settings == {"step": 0.4, "thr": 0.0} and choice.score == pytest.approx(0.4)
    assert isinstance(choice.payload, Choice) and choice.payload.settings == {"thr": 0.0}
    assert ctx.info["selection"] == {"metric": "val_map50", "grid": [{"step": 0.2}, {"step": 0.4}],
                                     "scores": [0.2, 0.4], "chosen": {"step": 0.4, "thr": 0.0}, "score": 0.4}


def test_stages_and_classes_are_recorded_through_record_selection():
    ctx = Context()
    ctx.select([{"C": 0.1}, {"C": 1.0}], lambda s: s["C"] / 2, metric="val_map50")
    ctx.select([{"C": 1.0, "stride": 8}, {"C": 1.0, "stride": 16}], lambda s: 0.7 if s["stride"] == 8 else 0.6,
               metric="val_map50")
    sel = ctx.info["selection"]
    assert sel["grid"] == [{"C": 0.1}, {"C": 1.0}, {"C": 1.0, "stride": 8}, {"C": 1.0, "stride": 16}]
    assert sel["scores"] == [0.05, 0.5, 0.7, 0.6]
    assert (sel["chosen"], sel["score"]) == ({"C": 1.0, "stride": 8}, 0.7)
    ctx.select([{"nms_iou": 0.3}], lambda s: None, metric="val_ap50", for_class="person")
    assert ctx.info["selection_per_class"]["person"]["scores"] == [None]


def test_bad_grids_and_scores_fail_clearly():
    with pytest.raises(ValueError, match="grid is empty"):
        choose([], lambda s: 0.0, metric="val_map50")
    with pytest.raises(TypeError, match="expected a number or None"):
        choose([{"k": 1}], lambda s: "high")
    with pytest.raises(TypeError, match="3-tuple"):
        choose([{"k": 1}], lambda s: (0.1, "model", "extra"))


# ------------------------------------------------------------------------------ every pipeline uses the helper


def _mentions(node: ast.AST, word: str) -> bool:
    return any((isinstance(n, ast.Name) and word in n.id) or (isinstance(n, ast.Attribute) and word in n.attr)
               for n in ast.walk(node))


def _uses_val(fn: ast.FunctionDef) -> bool:
    """Whether the body reads a name ``val`` or ``val_*`` (the val split or what was computed on it)."""
    return any(isinstance(n, ast.Name) and (n.id == "val" or n.id.startswith("val_")) for n in ast.walk(fn))


def own_selection(tree: ast.Module) -> list[tuple[int, str]]:
    """``(line, what)`` for every place a module chooses on val by hand: a direct ``record_selection`` call, or, in
    a function that touches val, a comparison against a running ``best``, ``max``/``min`` with a key, or an
    ``argmax``."""
    found = [(n.lineno, "calls record_selection (use ctx.select)") for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "record_selection"]
    for fn in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
        if not _uses_val(fn):
            continue
        for n in ast.walk(fn):
            if isinstance(n, ast.Compare) and any(isinstance(op, (ast.Gt, ast.GtE, ast.Lt, ast.LtE)) for op in n.ops) \
                    and _mentions(n, "best"):
                found.append((n.lineno, "compares with a running best"))
            elif isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("max", "min") \
                    and any(k.arg == "key" for k in n.keywords):
                found.append((n.lineno, f"{n.func.id}(..., key=...)"))
            elif isinstance(n, ast.Call) and _mentions(n.func, "argmax"):
                found.append((n.lineno, "argmax"))
    return sorted(set(found))


def test_no_pipeline_chooses_on_val_by_hand():
    problems = []
    for path in sorted((ROOT / "pipelines").rglob("*.py")):
        for line, what in own_selection(ast.parse(path.read_text(), str(path))):
            problems.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert not problems, "choose on val with ctx.select (benchsuite.selection):\n" + "\n".join(problems)


def test_the_scan_finds_the_hand_written_loops_it_replaced():
    loops = {
        "running best": "def fit(self, train, val, ctx):\n    best = -1.0\n    for t in ts:\n        ap = f(val, t)\n"
                        "        if ap > best:\n            best = ap\n",
        "max with key": "def fit(self, train, val, ctx):\n    self.k_ = max(ks, key=lambda k: (val_acc[k], -k))\n",
        "argmax": "def fit(self, train, val, ctx):\n    i = int(np.argmax([acc(val, c) for c in cs]))\n",
        "record_selection": "def f(ctx):\n    ctx.record_selection(metric='m', grid=[], scores=[], chosen={})\n",
    }
    for what, source in loops.items():
        assert own_selection(ast.parse(source)), what
    # best-IoU bookkeeping outside val is not a selection
    assert not own_selection(ast.parse("def load(state, own):\n    best = {}\n    if len(fit) > len(best):\n"
                                       "        best = fit\n"))
    # the pipelines that choose on val call the helper
    for module in ("classical/nn_l1.py", "classical/hog_svm.py", "classical/hog_svm_det.py", "classical/ism.py",
                   "classical/viola_jones.py", "classical/ss_hog_svm.py", "reference/opencv_hog_people.py",
                   "deep/rcnn.py"):
        assert "ctx.select(" in (ROOT / "pipelines" / module).read_text(), module


def test_prefer_first_keeps_the_default_unless_the_other_wins_clearly():
    grid = [{"size": 32, "t": 0.1}, {"size": 32, "t": 0.2}, {"size": 48, "t": 0.1}, {"size": 48, "t": 0.2}]
    scores = {(32, 0.1): 0.50, (32, 0.2): 0.55, (48, 0.1): 0.70, (48, 0.2): 0.60}
    seen: list[tuple[dict, dict]] = []

    def judge(verdict: bool):
        def is_clear(best: dict, default: dict) -> bool:
            seen.append((best, default))
            return verdict
        return is_clear

    ctx = Context()
    kept = ctx.select(grid, lambda s: scores[s["size"], s["t"]], metric="val_ap50",
                      prefer_first=("size", judge(False)))
    assert kept.settings == {"size": 32, "t": 0.2} and kept.score == 0.55 and kept.index == 1
    assert seen == [({"size": 48, "t": 0.1}, {"size": 32, "t": 0.2})]  # the overall best against the default
    assert ctx.info["selection"]["chosen"] == {"size": 32, "t": 0.2}  # what is kept is what is recorded
    beaten = Context().select(grid, lambda s: scores[s["size"], s["t"]], metric="m", prefer_first=("size", judge(True)))
    assert beaten.settings == {"size": 48, "t": 0.1}
    seen.clear()
    scores[32, 0.2] = 0.9  # the default is the best: nothing to judge
    assert Context().select(grid, lambda s: scores[s["size"], s["t"]], metric="m",
                            prefer_first=("size", judge(True))).settings == {"size": 32, "t": 0.2} and not seen
