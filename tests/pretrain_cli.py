"""The ``bevjepa`` command line run inside the test process, on a pretraining config and a synthetic dataroot."""

from pathlib import Path

from bevjepa.cli import BevJepaCLI

PRETRAIN_CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "pretrain"


def run_bevjepa(*args: str) -> BevJepaCLI:
    """What ``bevjepa <args>`` runs, in this process."""
    return BevJepaCLI(
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        args=list(args),
    )


def small_run_arguments(config_name: str, dataroot: Path, version: str, root: Path) -> list[str]:
    """Arguments that point ``configs/pretrain/<config_name>`` at a dataroot with small batches and no workers."""
    return [
        "--config",
        str(PRETRAIN_CONFIGS / config_name),
        f"--data.init_args.dataroot={dataroot}",
        f"--data.init_args.version={version}",
        "--data.init_args.batch_size=2",
        "--data.init_args.num_workers=0",
        f"--trainer.default_root_dir={root}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
    ]
