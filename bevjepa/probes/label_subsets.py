"""Label efficiency: which training samples a probe may read when it gets only a fraction of the labels.

The subsets are nested (the 1 % subset lies inside the 10 % one, which lies inside 100 %) and drawn from one
seeded permutation, so every method sees the same samples at every fraction.
"""

import math

import torch


def label_subset(num_samples: int, fraction: float, seed: int) -> torch.Tensor:
    """Indices of the training samples kept at ``fraction`` of the labels.

    Args:
        num_samples: training samples in all.
        fraction: share kept, in (0, 1]; at least one sample is kept.
        seed: seeds the permutation (the same for every fraction, which makes the subsets nested).

    Returns:
        (ceil(fraction * num_samples),) int64 indices, sorted.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"label fraction {fraction} is not in (0, 1]")
    if num_samples < 1:
        raise ValueError("no training samples to draw labels from")
    order = torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed))
    kept = max(1, math.ceil(fraction * num_samples - 1e-9))
    return order[:kept].sort().values
