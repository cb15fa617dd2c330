"""Trains the small JEPA module with DDP over 2 CPU processes (gloo) and saves, per rank, the encoders and the
sample tokens it trained on. Run by test_ddp.py: ``python ddp_pretrain.py OUT_DIR``."""

import sys
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).parent))
from jepa_scenes import SceneDataModule
from small_models import small_module


class SaveEncoders(L.Callback):
    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.tokens: list[str] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.tokens += batch.sample_tokens

    def on_train_end(self, trainer, pl_module) -> None:
        torch.save(
            {
                "target_encoder": pl_module.target_encoder.state_dict(),
                "encoder_parameters": {n: p.detach() for n, p in pl_module.encoder.named_parameters()},
                "tokens": self.tokens,
                "global_step": trainer.global_step,
            },
            self.out_dir / f"rank{trainer.global_rank}.pt",
        )


def main(out_dir: Path) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    module = small_module(monitor_every_n_steps=2)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_steps=4,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[SaveEncoders(out_dir)],
    )
    trainer.fit(module, SceneDataModule(train_scenes=16, batch_size=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
