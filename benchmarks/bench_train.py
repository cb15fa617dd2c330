"""Training speed of a JEPA pretraining config: step time, samples/s and peak memory, on one device.

Runs the config's real training loop (Lightning, the config's DataModule and model) for ``--warmup`` +
``--steps`` optimizer steps on one device and times every step from batch start to batch end (forward,
backward, optimizer, EMA update), and separately the wait for each batch (data loading). Prints a table and,
with ``--out``, writes JSON.

    python benchmarks/bench_train.py --config configs/pretrain/synthetic_cpu.yaml \
        --dataroot data/synthetic_demo --steps 10
    python benchmarks/bench_train.py --config configs/pretrain/nuscenes_lidar_radar.yaml \
        --dataroot data/synthetic_nuscenes --version v1.0-nuscenes --steps 20   # on a GPU
"""

import argparse
import json
import platform
import resource
import statistics
import time
from pathlib import Path

import lightning as L
import torch

import bevjepa.jepa  # noqa: F401  (the config names its classes)
from bevjepa.cli import BevJepaCLI


class StepTimer(L.Callback):
    """Times training steps and the data wait before each, skipping the first ``warmup`` steps."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.step_seconds: list[float] = []
        self.data_seconds: list[float] = []
        self.voxels: list[int] = []
        self._batch_start = 0.0
        self._previous_end: float | None = None

    def _now(self, trainer: L.Trainer) -> float:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._batch_start = self._now(trainer)
        if batch_idx == self.warmup and trainer.strategy.root_device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        if batch_idx >= self.warmup and self._previous_end is not None:
            self.data_seconds.append(self._batch_start - self._previous_end)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        end = self._now(trainer)
        if batch_idx >= self.warmup:
            self.step_seconds.append(end - self._batch_start)
            self.voxels.append(int(batch.voxels.coords.shape[0]))
        self._previous_end = end


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    cpu = platform.processor() or "cpu"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line
        ]
        cpu = names[0] if names else cpu
    return f"{cpu} ({torch.get_num_threads()} torch threads)"


def run(args: argparse.Namespace) -> dict:
    overrides = [
        f"--trainer.max_steps={args.warmup + args.steps}",
        "--trainer.max_epochs=-1",
        "--trainer.devices=1",
        "--trainer.num_nodes=1",
        "--trainer.strategy=auto",
        "--trainer.limit_val_batches=0",
        "--trainer.num_sanity_val_steps=0",
        "--trainer.logger=false",
        "--trainer.enable_checkpointing=false",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={args.root}",
    ]
    if args.dataroot:
        overrides.append(f"--data.init_args.dataroot={args.dataroot}")
    if args.version:
        overrides.append(f"--data.init_args.version={args.version}")
    if args.batch_size:
        overrides.append(f"--data.init_args.batch_size={args.batch_size}")
    cli = BevJepaCLI(
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_callback=None,
        run=False,
        args=["--config", str(args.config), *overrides],
    )
    timer = StepTimer(args.warmup)
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit(cli.model, cli.datamodule)
    batch_size = cli.datamodule.batch_size
    step = statistics.median(timer.step_seconds)
    on_gpu = cli.trainer.strategy.root_device.type == "cuda"
    return {
        "config": str(args.config),
        "device": device_name(),
        "precision": str(cli.trainer.precision),
        "batch_size": batch_size,
        "timed_steps": len(timer.step_seconds),
        "step_s_median": step,
        "step_s_mean": statistics.mean(timer.step_seconds),
        "data_wait_s_median": statistics.median(timer.data_seconds) if timer.data_seconds else None,
        "samples_per_s": batch_size / step,
        "voxels_per_batch_mean": statistics.mean(timer.voxels),
        "token_grid": list(cli.model.token_shape),
        "trainable_parameters": sum(p.numel() for p in cli.model.parameters() if p.requires_grad),
        "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if on_gpu else None,
        "peak_process_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, default=Path("configs/pretrain/synthetic_cpu.yaml"))
    parser.add_argument("--dataroot", help="override the config's dataroot")
    parser.add_argument("--version", help="override the config's dataset version")
    parser.add_argument("--batch-size", type=int, help="override the config's batch size")
    parser.add_argument("--steps", type=int, default=10, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--root", default="outputs/bench_train", help="trainer root directory")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = run(args)
    width = max(len(k) for k in results)
    print(
        "\n"
        + "\n".join(
            f"{k:<{width}}  {v:.4g}" if isinstance(v, float) else f"{k:<{width}}  {v}"
            for k, v in results.items()
        )
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
