"""The stacked-kernel study: each pair differs only in its first block and has the same theoretical field there;
the stratified training subset keeps the class shares."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchsuite.erf import theoretical_field
from pipelines.deep.stacked_kernels import (
    STUDY,
    KernelStudyNet,
    Single5x5,
    Single9x9,
    Single17x17,
    Stack3x3x2,
    Stack3x3x4,
    Stack3x3x8,
    _stratified,
)

PAIRS = [(Stack3x3x2, Single5x5, 5), (Stack3x3x4, Single9x9, 9), (Stack3x3x8, Single17x17, 17)]


@pytest.mark.parametrize(("stack", "single", "rf"), PAIRS)
def test_pairs_share_the_theoretical_field_and_differ_only_in_the_block(stack, single, rf):
    nets = [KernelStudyNet(10, cls.kernel, cls.depth, 4) for cls in (stack, single)]
    for net in nets:
        field, hw = theoretical_field(net, "block", torch.zeros(1, 3, 40, 40))
        assert field is not None and field.size == (rf, rf) and hw == (40, 40)
    heads = [[tuple(p.shape) for p in net.head.parameters()] for net in nets]
    assert heads[0] == heads[1]
    assert stack.report_group == single.report_group == STUDY and stack.erf_layer == single.erf_layer == "block"
    assert stack.profile_params == single.profile_params


def test_stratified_subset_keeps_class_shares():
    labels = np.repeat(np.arange(4), [100, 50, 30, 20])
    picks = _stratified(labels, 40, np.random.default_rng(0))
    assert len(picks) == len(np.unique(picks)) == 40
    assert np.bincount(labels[picks]).tolist() == [20, 10, 6, 4]
