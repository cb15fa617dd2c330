"""The training order: a pure function of (seed, epoch), disjoint across ranks, and exact across a resume."""

import json
import subprocess
import sys
from itertools import chain
from pathlib import Path

import lightning as L
import pytest
from ddp_training_order import SEED, TokenRecorder, small_datamodule
from lightning.pytorch.callbacks import ModelCheckpoint

from datamodules.resumable_sampler import ResumableDistributedSampler

SCRIPT = Path(__file__).parent / "ddp_training_order.py"


def test_order_is_a_function_of_seed_and_epoch_and_ranks_share_it():
    dataset = list(range(23))
    orders = {}
    for epoch in (0, 1):
        ranks = []
        for rank in range(3):
            sampler = ResumableDistributedSampler(dataset, num_replicas=3, rank=rank, seed=7)
            sampler.set_epoch(epoch)
            ranks.append(list(sampler))
        assert all(len(share) == 8 for share in ranks)  # 23 padded to 24, as DistributedSampler does
        assert set().union(*map(set, ranks)) == set(dataset)
        orders[epoch] = ranks
    assert orders[0] != orders[1]
    again = ResumableDistributedSampler(dataset, num_replicas=3, rank=1, seed=7)
    again.set_epoch(1)
    assert list(again) == orders[1][1]
    resumed = ResumableDistributedSampler(
        dataset, num_replicas=3, rank=1, seed=7, resume_epoch=1, resume_samples=5
    )
    resumed.set_epoch(1)
    assert list(resumed) == orders[1][1][5:]
    resumed.set_epoch(2)  # later epochs are whole again
    assert len(list(resumed)) == 8
    with pytest.raises(ValueError, match="cannot resume"):
        ResumableDistributedSampler(dataset, num_replicas=3, rank=1, resume_samples=9)


def _fit(dataroot: Path, version: str, root: Path, max_steps: int, callbacks=(), ckpt_path=None) -> list:
    module = TokenRecorder()
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        callbacks=list(callbacks),
    )
    trainer.fit(module, datamodule=small_datamodule(str(dataroot), version), ckpt_path=ckpt_path)
    return module.tokens


def test_resumed_run_sees_the_samples_an_uninterrupted_run_sees(synthetic_dataroot, tmp_path: Path):
    dataroot, version = synthetic_dataroot
    # The tiny train split has 8 keyframes: 4 batches an epoch; step 6 is the middle of the second epoch.
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=6, save_top_k=-1)
    straight = _fit(dataroot, version, tmp_path / "straight", 10, [checkpoint])
    assert len(straight) == 10
    first_epoch, second_epoch = straight[:4], straight[4:8]
    assert sorted(chain(*first_epoch)) == sorted(chain(*second_epoch)), "every keyframe once an epoch"
    assert first_epoch != second_epoch, "each epoch has its own order"
    saved = sorted((tmp_path / "ckpt").glob("*step=6*.ckpt"))
    assert len(saved) == 1
    resumed = _fit(dataroot, version, tmp_path / "resumed", 10, ckpt_path=saved[0])
    assert resumed == straight[6:]


@pytest.mark.slow
def test_ddp_ranks_train_on_disjoint_shares_in_the_datamodule_order(synthetic_dataroot, tmp_path: Path):
    dataroot, version = synthetic_dataroot
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(dataroot), version, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [list(chain(*json.loads((tmp_path / f"rank{rank}.json").read_text()))) for rank in (0, 1)]
    dataset = small_datamodule(str(dataroot), version).dataset("train")
    assert not set(ranks[0]) & set(ranks[1])
    assert sorted(ranks[0] + ranks[1]) == sorted(record.sample_token for record in dataset.records)
    # Lightning kept the DataModule's sampler (its own would be seeded differently).
    for rank, tokens in enumerate(ranks):
        sampler = ResumableDistributedSampler(dataset, num_replicas=2, rank=rank, seed=SEED)
        assert tokens == [dataset.records[index].sample_token for index in sampler]
