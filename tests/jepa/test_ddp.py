"""DDP over 2 CPU processes (gloo): the EMA target encoders (parameters and BatchNorm statistics) are identical
on both ranks after several steps, although each rank's online BatchNorm statistics follow its own data."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).parent / "ddp_pretrain.py"


@pytest.mark.slow
def test_target_encoders_identical_across_ranks(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    assert ranks[0]["global_step"] == ranks[1]["global_step"] == 4
    assert not set(ranks[0]["tokens"]) & set(ranks[1]["tokens"]), "each rank trained on its own samples"
    for part in ("target_encoder", "encoder_parameters"):
        first, second = ranks[0][part], ranks[1][part]
        assert first.keys() == second.keys()
        for name in first:
            assert torch.equal(first[name], second[name]), f"{part}.{name} differs between ranks"
    running_mean = "backbone_3d.conv_input.1.running_mean"
    assert ranks[0]["target_encoder"][running_mean].abs().sum() > 0, "BatchNorm statistics were updated"
