"""The training order: a pure function of (seed, epoch), each rank its disjoint share, resumable mid-epoch.

It is a ``DistributedSampler`` (so Lightning keeps it instead of injecting its own, and calls ``set_epoch``
on it each epoch) that can start an epoch part-way in: where a run resumed from a checkpoint saved in the
middle of that epoch stopped. The samples it skips are exactly those the run had consumed.
"""

from torch.utils.data import Dataset, DistributedSampler


class ResumableDistributedSampler(DistributedSampler):
    """``DistributedSampler`` that can skip the first samples of one epoch.

    Args:
        dataset: the dataset.
        num_replicas: number of ranks sharing each epoch.
        rank: this rank.
        shuffle: shuffle each epoch with a generator seeded by ``seed + epoch``.
        seed: the order's seed, the same on every rank.
        resume_epoch: the epoch the run resumes in.
        resume_samples: samples of this rank's share of ``resume_epoch`` already consumed.
    """

    def __init__(
        self,
        dataset: Dataset,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        resume_epoch: int = 0,
        resume_samples: int = 0,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        if not 0 <= resume_samples <= self.num_samples:
            raise ValueError(
                f"cannot resume after {resume_samples} of {self.num_samples} samples of an epoch"
            )
        self.resume_epoch, self.resume_samples = resume_epoch, resume_samples

    def __iter__(self):
        indices = list(super().__iter__())
        start = self.resume_samples if self.epoch == self.resume_epoch else 0
        return iter(indices[start:])
