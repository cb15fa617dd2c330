"""Label-efficiency subsets: nested, seeded, of the requested size."""

import pytest
import torch

from bevjepa.probes.label_subsets import label_subset


def test_subsets_are_nested_seeded_and_sized():
    small, medium, full = (label_subset(288, fraction, seed=3) for fraction in (0.01, 0.1, 1.0))
    assert (len(small), len(medium), len(full)) == (3, 29, 288)
    assert set(small.tolist()) <= set(medium.tolist()) <= set(full.tolist())
    assert torch.equal(full, torch.arange(288))
    assert torch.equal(label_subset(288, 0.1, seed=3), medium)
    assert not torch.equal(label_subset(288, 0.1, seed=4), medium)


def test_at_least_one_sample_and_bad_fractions_refused():
    assert len(label_subset(10, 0.01, seed=0)) == 1
    with pytest.raises(ValueError, match="not in"):
        label_subset(10, 0.0, seed=0)
