"""Print the loss curve and collapse monitors of a pretraining run from its TensorBoard log.

    python -m bevjepa.jepa.training_report outputs/pretrain_synthetic_cpu/lightning_logs/version_0

Prints the training loss along the run, then one row per validation: the JEPA losses next to their
predict-the-mean baselines, the future loss with true vs other samples' actions (and without actions, where
the run trains that rollout), and the effective rank of the target embeddings; then the training-time
collapse monitors.
"""

import argparse
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

VALIDATION_COLUMNS = {
    "val/loss": "loss",
    "val/masked_block_loss": "block",
    "val/masked_block_mean_baseline_loss": "block mean-baseline",
    "val/future_loss": "future",
    "val/future_mean_baseline_loss": "future mean-baseline",
    "val/future_loss_shuffled_actions": "future other-actions",
    "val/unconditioned_loss": "future no-actions",
    "val/occluded_loss": "occluded",
    "val/target_effective_rank_fraction": "target rank/D",
}
MONITORS = ("context", "target", "prediction")


def read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the newest event file under ``log_dir``: tag -> [(step, value)]."""
    files = sorted(log_dir.rglob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"no TensorBoard event file under {log_dir}")
    events = EventAccumulator(str(files[-1]), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def format_report(scalars: dict[str, list[tuple[int, float]]], train_rows: int = 10) -> str:
    """The report as text."""
    lines = []
    train = scalars.get("train/loss", [])
    if train:
        stride = max(len(train) // train_rows, 1)
        picked = train[::stride] + ([train[-1]] if (len(train) - 1) % stride else [])
        lines.append("training loss: " + "  ".join(f"{step}:{value:.4f}" for step, value in picked))
    # A loss term a run did not compute is logged as 0 throughout: no column for it.
    columns = [tag for tag in VALIDATION_COLUMNS if any(value for _, value in scalars.get(tag, ()))]
    if columns:
        header = ["step"] + [VALIDATION_COLUMNS[tag] for tag in columns]
        widths = [max(len(h), 7) for h in header]
        lines.append("validation:")
        lines.append("  " + " | ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
        by_step: dict[int, dict[str, float]] = {}
        for tag in columns:
            for step, value in scalars[tag]:
                by_step.setdefault(step, {})[tag] = value
        for step in sorted(by_step):
            cells = [str(step)] + [f"{by_step[step][t]:.4f}" if t in by_step[step] else "" for t in columns]
            lines.append("  " + " | ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)))
    for name in MONITORS:
        tags = [f"monitor/{name}_{k}" for k in ("effective_rank_fraction", "std_ratio", "mean_cosine")]
        if all(tag in scalars for tag in tags):
            last = [scalars[tag][-1][1] for tag in tags]
            lowest_rank = min(v for _, v in scalars[tags[0]])
            lines.append(
                f"monitor {name:>10}: rank/D {last[0]:.3f} (lowest {lowest_rank:.3f}), std ratio {last[1]:.3f}, "
                f"mean cosine {last[2]:.3f}"
            )
    if "monitor/collapse_checks_failed" in scalars:
        worst = max(v for _, v in scalars["monitor/collapse_checks_failed"])
        lines.append(f"collapse checks failed in a row (most): {worst:.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("log_dir", type=Path, help="the run's log folder (holds events.out.tfevents.*)")
    args = parser.parse_args(argv)
    print(format_report(read_scalars(args.log_dir)))


if __name__ == "__main__":
    main()
