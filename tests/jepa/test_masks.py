"""Target samplers: seeded index tensors, block sizes, empty-space rejection and weights, occluded and future
targets, and the voxels the context encoder is allowed to see."""

import pytest
import torch
from jepa_scenes import SCENE_GRID

from bevjepa.batch import VoxelBatch
from bevjepa.jepa.masks import (
    FutureTokenSampler,
    MultiBlockMaskSampler,
    OccludedTokenSampler,
    drop_voxels_in_tokens,
    observed_columns,
    occupied_columns,
    seeded_generator,
)


def _blocks(sampler, occupied, step=0, first_index=0, stream=0):
    return sampler.sample(occupied, seed=7, stream=stream, step=step, first_index=first_index)


def test_blocks_are_reproducible_and_vary_with_every_key():
    sampler = MultiBlockMaskSampler()
    occupied = torch.rand(2, 16, 16)
    first = torch.stack([b.indices for b in _blocks(sampler, occupied)])
    assert torch.equal(first, torch.stack([b.indices for b in _blocks(sampler, occupied)]))
    for keys in ({"step": 1}, {"first_index": 2}, {"stream": 1}):
        other = torch.stack([b.indices for b in _blocks(sampler, occupied, **keys)])
        assert not torch.equal(first, other), keys
    # Sample 1 of a batch placed at index 0 is sample 0 of the batch placed at index 1.
    shifted = _blocks(sampler, occupied[1:], first_index=1)
    assert torch.equal(first[:, 1], torch.stack([b.indices[0] for b in shifted]))


def test_blocks_are_rectangles_of_the_requested_size():
    sampler = MultiBlockMaskSampler(num_blocks=4, block_scale=(0.15, 0.2))
    for step in range(20):
        blocks = _blocks(sampler, torch.ones(3, 16, 16), step=step)
        assert len(blocks) == 4
        size = blocks[0].indices.shape[1]
        assert 0.1 * 256 <= size <= 0.26 * 256
        for block in blocks:
            rows, cols = block.indices // 16, block.indices % 16
            spans = (rows.amax(1) - rows.amin(1) + 1) * (cols.amax(1) - cols.amin(1) + 1)
            assert torch.equal(spans, torch.full((3,), size))  # a filled rectangle
            assert torch.equal(block.weights, torch.ones_like(block.weights))


def test_empty_blocks_are_rejected_and_down_weighted():
    occupied = torch.zeros(1, 16, 16)
    occupied[0, 10:16, 10:16] = 1.0  # only one corner holds anything
    sampler = MultiBlockMaskSampler(min_occupied_fraction=0.2, placement_attempts=50, empty_token_weight=0.1)
    for step in range(5):
        for block in _blocks(sampler, occupied, step=step):
            rows, cols = block.indices // 16, block.indices % 16
            share = ((rows >= 10) & (cols >= 10)).float().mean()
            assert share >= 0.2
            expected = torch.where((rows >= 10) & (cols >= 10), 1.0, 0.1)
            torch.testing.assert_close(block.weights, expected)


def test_occluded_tokens_are_drawn_from_candidates_only():
    occluded = torch.zeros(2, 20)
    occluded[0, [3, 5, 8, 9]] = 1.0
    occluded[0, 4] = 0.25  # under min_cell_fraction
    occupied = torch.zeros(2, 20)
    occupied[0, 5] = 1.0
    available = torch.ones(2, 20, dtype=torch.bool)
    available[0, 9] = False
    sampler = OccludedTokenSampler(max_tokens=2, min_cell_fraction=0.5, empty_token_weight=0.1)
    target = sampler.sample(occluded, occupied, available, seed=0, stream=0, step=0, first_index=0)
    assert target.indices.shape == (2, 2)
    assert set(target.indices[0].tolist()) <= {3, 5, 8}
    assert torch.all(target.weights[1] == 0)  # the second sample has none: padding
    for index, weight in zip(target.indices[0].tolist(), target.weights[0].tolist(), strict=True):
        assert weight == pytest.approx(1.0 if index == 5 else 0.1)
    everything = OccludedTokenSampler(max_tokens=10).sample(occluded, occupied, available, 0, 0, 0, 0)
    assert sorted(everything.indices[0].tolist()) == [3, 5, 8]
    none = sampler.sample(torch.zeros(2, 20), occupied, available, 0, 0, 0, 0)
    assert none.indices.shape == (2, 0)


def test_future_targets_cover_every_token_and_skip_invalid_steps():
    occupied = torch.zeros(2, 3, 6)
    occupied[:, :, 0] = 1.0
    valid = torch.tensor([[True, True, False], [True, True, True]])
    targets = FutureTokenSampler(steps=3, empty_token_weight=0.25).sample(occupied, valid)
    assert len(targets) == 3
    assert torch.equal(targets[0].indices[1], torch.arange(6))
    assert targets[0].weights[0].tolist() == [1.0] + [0.25] * 5
    assert torch.all(targets[2].weights[0] == 0) and targets[2].weights[1, 0] == 1.0


def test_dropping_voxels_of_hidden_tokens():
    # Voxels in cells (row, col) = (0, 0), (2, 7) of sample 0 and (0, 0) of sample 1.
    coords = torch.tensor([[0, 1, 3, 3], [0, 2, 17, 63], [0, 3, 17, 60], [1, 1, 0, 0]], dtype=torch.int32)
    voxels = VoxelBatch(torch.arange(4.0).view(4, 1), coords, batch_size=2)
    hidden = torch.zeros(2, 64, dtype=torch.bool)
    hidden[0, 2 * 8 + 7] = True
    kept = drop_voxels_in_tokens(voxels, hidden, SCENE_GRID, patch=1)
    assert kept.features.flatten().tolist() == [0.0, 3.0] and kept.batch_size == 2


def test_columns_occupied_by_objects_not_by_ground():
    # Cell (0, 0): ground only (one layer); cell (0, 1): layers 4..7 (4 x 0.25 m = 1 m); cell (1, 0): 2 layers.
    coords = [
        [0, 4, 1, 1],
        [0, 4, 2, 9],
        [0, 5, 2, 9],
        [0, 6, 3, 10],
        [0, 7, 2, 9],
        [0, 4, 9, 0],
        [0, 5, 9, 0],
    ]
    voxels = VoxelBatch(torch.zeros(7, 1), torch.tensor(coords, dtype=torch.int32), batch_size=1)
    occupied = occupied_columns(voxels, SCENE_GRID, min_height=0.6)
    assert occupied[0, 0, 1] and not occupied[0, 0, 0] and not occupied[0, 1, 0]
    assert occupied.sum() == 1
    assert observed_columns(voxels, SCENE_GRID).sum() == 3


def test_seeded_generators_are_pure():
    first = torch.rand(3, generator=seeded_generator(1, 2, 3))
    assert torch.equal(first, torch.rand(3, generator=seeded_generator(1, 2, 3)))
    assert not torch.equal(first, torch.rand(3, generator=seeded_generator(1, 2, 4)))
