"""Probe suite: frozen-feature probes of pretrained encoders against baselines, one command to a results table.

  python tools/probe.py --ckpt JEPA.ckpt --baselines random,mae=MAE.ckpt --out outputs/probes
  python tools/probe.py --ckpt JEPA.ckpt --baselines random,mae=MAE.ckpt,supervised=SUP.ckpt \\
      --config configs/probe/synthetic_cpu.yaml --out outputs/probes

Every method's encoder is frozen; its layer-normalised tokens of the train and held-out splits are computed
once, then small heads train on them at each label fraction: occupancy now (4 classes), map elements
(6 layers) and a planning-cost head scoring fixed candidate trajectories (without and with ego status). A
method whose checkpoint holds a world model (JEPA) also forecasts future tokens from the logged actions; the
same occupancy head decodes them into occupancy at 1/2/3 s (each step mapped onto the present tokens' statistics,
measured on the training split), beside copying the present and beside the encoder's own tokens of the future
keyframes (held-out split: a perfect forecast, the path's ceiling). Planners that read
no scene (ego-status MLP, constant velocity, the mean trajectory) are scored beside them.

Writes to --out: results.json (every number, the config, checkpoint hashes, dataset and seeds), results.md
(the tables, also printed at the end) and pictures/<method>.png (predictions next to ground truth on one
held-out sample). Settings come from --config (every key documented there); flags override a few.
"""

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import yaml
from torch.utils.data import DataLoader, Subset

from bevjepa.grid import BevGrid
from bevjepa.probes.features import SplitFeatures, extract_split_features, token_batch
from bevjepa.probes.forecast_calibration import calibrate_forecasts
from bevjepa.probes.frozen_encoder import FrozenEncoder, load_frozen_encoder, random_init_like
from bevjepa.probes.pictures import pick_picture_sample, probe_picture
from bevjepa.probes.report import results_markdown
from bevjepa.probes.suite import ProbeSettings, SuiteResults, run_probe_suite
from datamodules.collate import collate_bev_batch
from datamodules.nuscenes import NuScenesBEVDataModule

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "probe" / "synthetic_cpu.yaml"
DATA_KEYS = (
    "dataroot",
    "version",
    "train_split",
    "val_split",
    "lidar_sweeps",
    "radar",
    "radar_sweeps",
    "future_steps",
    "occlusion_window",
    "cache_dir",
    "batch_size",
    "num_workers",
    "on_bad_sample",
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", type=Path, required=True, help="checkpoint of the method under test (JEPA)")
    parser.add_argument("--name", default="jepa", help="its name in the tables (default: jepa)")
    parser.add_argument(
        "--baselines",
        default="random",
        help="comma-separated baselines: 'random' (random-init encoder of the same architecture) and "
        "NAME=CHECKPOINT (e.g. mae=MAE.ckpt, supervised=SUP.ckpt); '' for none (default: random)",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="probe config YAML")
    parser.add_argument("--dataroot", help="override data.dataroot")
    parser.add_argument("--version", help="override data.version")
    parser.add_argument("--steps", type=int, help="override probe.steps (optimizer steps per probe)")
    parser.add_argument("--seed", type=int, help="override probe.seed")
    parser.add_argument(
        "--label-fractions", type=float, nargs="+", help="override probe.label_fractions, e.g. 0.01 0.1 1.0"
    )
    parser.add_argument(
        "--max-samples",
        type=int,
        help="use only the first N samples of each split (smoke runs)",
        default=None,
    )
    parser.add_argument(
        "--module-class",
        help="class path of the pretraining modules when their checkpoints do not name it "
        "(checkpoints written by the bevjepa CLI do)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def load_config(args: argparse.Namespace) -> dict:
    """The config file with the command-line overrides applied."""
    if not args.config.is_file():
        raise SystemExit(f"probe config {args.config} does not exist")
    config = yaml.safe_load(args.config.read_text())
    data, probe = config.setdefault("data", {}), config.setdefault("probe", {})
    unknown = set(data) - set(DATA_KEYS) - {"grid", "dataset_seed"}
    if unknown:
        raise SystemExit(f"unknown data keys in {args.config}: {sorted(unknown)}")
    for key, value in (("dataroot", args.dataroot), ("version", args.version)):
        if value is not None:
            data[key] = value
    overrides = (("steps", args.steps), ("seed", args.seed), ("label_fractions", args.label_fractions))
    for key, value in overrides:
        if value is not None:
            probe[key] = value
    fields = {f.name for f in dataclasses.fields(ProbeSettings)}
    if set(probe) - fields:
        raise SystemExit(f"unknown probe keys in {args.config}: {sorted(set(probe) - fields)}")
    return config


def load_methods(args: argparse.Namespace, seed: int) -> list[FrozenEncoder]:
    """The method under test and its baselines, frozen; all must share one grid, token size and input."""
    methods = [load_frozen_encoder(args.name, args.ckpt, args.module_class)]
    for entry in filter(None, (e.strip() for e in args.baselines.split(","))):
        name, _, path = entry.partition("=")
        if name in {m.name for m in methods}:
            raise SystemExit(f"method name {name!r} is used twice")
        if name == "random" and not path:
            methods.append(random_init_like(methods[0], seed))
        elif path:
            methods.append(load_frozen_encoder(name, path, args.module_class))
        else:
            raise SystemExit(
                f"baseline {name!r} needs a checkpoint: --baselines {name}=PATH (train it with "
                f"configs/pretrain/synthetic_cpu_{name}.yaml for the same steps as {args.ckpt})"
            )
    reference = methods[0]
    for method in methods[1:]:
        for what in ("grid", "in_channels", "token_patch"):
            if getattr(method, what) != getattr(reference, what):
                raise SystemExit(
                    f"{method.name} has {what} {getattr(method, what)}, {reference.name} has "
                    f"{getattr(reference, what)}: methods must be compared on the same grid and input"
                )
    return methods


def build_data(data: dict, reference: FrozenEncoder) -> NuScenesBEVDataModule:
    """The DataModule with labels on the checkpoints' grid; refuses a config grid or input that differs."""
    if "grid" in data:
        configured = BevGrid(**data["grid"])
        if configured != reference.grid:
            raise SystemExit(
                f"the config's grid {configured} is not the grid the checkpoints were trained on "
                f"{reference.grid}: probe labels must lie on the encoder's BEV cells"
            )
    settings = {key: data[key] for key in DATA_KEYS if key in data}
    datamodule = NuScenesBEVDataModule(**settings, grid=reference.grid, labels=True, future_voxels=False)
    if datamodule.in_channels != reference.in_channels:
        raise SystemExit(
            f"the data gives {datamodule.in_channels} features per voxel, the encoders expect "
            f"{reference.in_channels}: use the pretraining config's sensor settings (radar, sweeps)"
        )
    if datamodule.options.future_steps < 1:
        raise SystemExit("probes need future steps (data.future_steps: 6 for planning and occupancy at 3 s)")
    return datamodule


def split_features(
    datamodule: NuScenesBEVDataModule,
    split: str,
    methods: list[FrozenEncoder],
    forecast_steps: int,
    max_samples: int | None,
    progress: bool,
    encode_futures: bool = False,
) -> SplitFeatures:
    """A split's labels and every method's tokens and forecasts (and, with ``encode_futures``, the forecasting
    methods' tokens of the future keyframes, whose voxels are then loaded too)."""
    dataset = datamodule.dataset(split, future_voxels=encode_futures)
    if max_samples is not None:
        dataset = Subset(dataset, range(min(max_samples, len(dataset))))
    loader = DataLoader(
        dataset,
        batch_size=datamodule.batch_size,
        shuffle=False,
        num_workers=datamodule.num_workers,
        collate_fn=collate_bev_batch,
    )
    description = f"encoding {split} ({len(dataset)} samples)"
    if not progress:
        print(description, flush=True)
    return extract_split_features(
        loader, methods, forecast_steps, description, len(loader) if progress else None, encode_futures
    )


def forecastable_steps(methods: list[FrozenEncoder], wanted: int, available: int) -> int:
    """Future keyframes every forecasting method can predict, at most ``wanted`` and the data's steps."""
    steps = min(wanted, available)
    for method in methods:
        predictor = getattr(method.source, "predictor", None) if method.can_forecast else None
        if predictor is not None:
            steps = min(steps, predictor.max_time_offset)
    return steps


def results_dict(
    config: dict,
    args: argparse.Namespace,
    settings: ProbeSettings,
    methods: list[FrozenEncoder],
    suite: SuiteResults,
    sizes: dict[str, int],
    forecast_steps: int,
    timings: dict[str, float],
) -> dict:
    data = config["data"]
    return {
        "config_path": str(args.config),
        "config": config,
        "settings": dataclasses.asdict(settings),
        "forecast_steps": forecast_steps,
        "dataset": {
            "dataroot": data.get("dataroot"),
            "version": data.get("version"),
            "train_split": data.get("train_split", "train"),
            "val_split": data.get("val_split", "val"),
            "train_samples": sizes["train"],
            "val_samples": sizes["val"],
            "seed": data.get("dataset_seed"),
        },
        "methods": {
            m.name: {
                "checkpoint": m.checkpoint,
                "sha256": m.sha256,
                "module_class": m.module_class,
                "global_step": m.global_step,
                "grid": dataclasses.asdict(m.grid),
                "token_patch": m.token_patch,
            }
            for m in methods
        },
        "probes": {
            method: {str(fraction): values for fraction, values in per_fraction.items()}
            for method, per_fraction in suite.probes.items()
        },
        "ego_status_planners": {str(f): values for f, values in suite.ego_status_planners.items()},
        "ego_speed_r2": suite.ego_speed_r2,
        "planning_priors": suite.planning_priors,
        "timings_s": timings,
    }


def write_pictures(suite: SuiteResults, val: SplitFeatures, out: Path) -> list[Path]:
    folder = out / "pictures"
    folder.mkdir(parents=True, exist_ok=True)
    every = token_batch(val, None, range(len(val.labels)))
    index = pick_picture_sample(every)
    paths = []
    for method, module in suite.modules.items():
        figure = probe_picture(
            module,
            token_batch(val, method, [index]),
            f"{method}: held-out sample {val.labels.sample_tokens[index]}",
        )
        path = folder / f"{method}.png"
        figure.savefig(path, dpi=80)
        plt.close(figure)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    config = load_config(args)
    settings = ProbeSettings(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in config["probe"].items()}
    )
    started = time.perf_counter()
    methods = load_methods(args, settings.seed)
    datamodule = build_data(config["data"], methods[0])
    forecast_steps = forecastable_steps(methods, settings.forecast_steps, datamodule.options.future_steps)
    progress = not args.no_progress
    splits = {
        "train": config["data"].get("train_split", "train"),
        "val": config["data"].get("val_split", "val"),
    }
    # The held-out split also encodes the future keyframes of the methods that forecast (perfect forecasts).
    forecasting = forecast_steps > 0 and any(method.can_forecast for method in methods)
    features = {
        role: split_features(
            datamodule,
            split,
            methods,
            forecast_steps,
            args.max_samples,
            progress,
            encode_futures=role == "val" and forecasting,
        )
        for role, split in splits.items()
    }
    calibrate_forecasts(features["train"], [features["val"]])
    encoded = time.perf_counter()
    suite = run_probe_suite(
        features["train"], features["val"], methods[0].grid, methods[0].token_patch, settings, progress
    )
    trained = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    write_pictures(suite, features["val"], args.out)
    timings = {
        "encode_s": round(encoded - started, 1),
        "probes_s": round(trained - encoded, 1),
        "total_s": round(time.perf_counter() - started, 1),
    }
    sizes = {role: len(f.labels) for role, f in features.items()}
    results = results_dict(config, args, settings, methods, suite, sizes, forecast_steps, timings)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    markdown = results_markdown(results)
    (args.out / "results.md").write_text(markdown)
    print(markdown)
    print(f"written to {args.out}: results.json, results.md, pictures/ ({timings})")
    return results


if __name__ == "__main__":
    main()
