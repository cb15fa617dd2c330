"""The pretraining report reads a run's TensorBoard scalars and lays out the curve and the monitors."""

from torch.utils.tensorboard import SummaryWriter

from bevjepa.jepa.training_report import format_report, read_scalars


def test_report_from_a_tensorboard_log(tmp_path):
    writer = SummaryWriter(str(tmp_path))
    for step in range(0, 50, 5):
        writer.add_scalar("train/loss", 2.0 - step / 50, step)
    for step, block in ((24, 0.31), (49, 0.28)):
        writer.add_scalar("val/masked_block_loss", block, step)
        writer.add_scalar("val/masked_block_mean_baseline_loss", 0.30, step)
        writer.add_scalar("val/unconditioned_loss", 0.0, step)  # a term this run did not train
    for name, value in (("effective_rank_fraction", 0.5), ("std_ratio", 0.8), ("mean_cosine", 0.3)):
        writer.add_scalar(f"monitor/target_{name}", value, 10)
    writer.close()
    report = format_report(read_scalars(tmp_path))
    assert "training loss: 0:2.0000" in report and "45:1.1000" in report
    rows = [line.split("|") for line in report.splitlines() if line.strip().startswith(("24", "49"))]
    assert [float(row[1]) for row in rows] == [0.31, 0.28] and all(float(row[2]) == 0.30 for row in rows)
    assert "no-actions" not in report
    assert "monitor     target: rank/D 0.500 (lowest 0.500), std ratio 0.800, mean cosine 0.300" in report
