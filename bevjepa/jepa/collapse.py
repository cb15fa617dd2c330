"""``CollapseMonitor``: a callback that raises a clear alarm when the embeddings collapse, and can stop the run."""

import logging
from collections.abc import Sequence

import lightning as L
from lightning.pytorch.utilities import rank_zero_warn

from bevjepa.jepa.monitors import EmbeddingMonitors

log = logging.getLogger(__name__)


class CollapseMonitor(L.Callback):
    """Watches the embedding monitors that ``JEPAPretrainModule.training_step`` returns every
    ``monitor_every_n_steps`` steps (under ``outputs["monitors"]``).

    A check fails when a watched set of embeddings has an effective rank below ``min_effective_rank_fraction``
    of its width, a normalised per-dimension spread below ``min_std_ratio``, or a mean pairwise cosine above
    ``max_mean_cosine``. After ``patience`` failed checks in a row it warns once, naming the numbers, and with
    ``stop_on_collapse`` it stops training.

    Args:
        watch: which monitored embeddings to judge (``"context"``, ``"target"``, ``"prediction"``).
        min_effective_rank_fraction: RankMe / D below this is collapse.
        min_std_ratio: per-dimension std of normalised embeddings times sqrt(D) below this is collapse.
        max_mean_cosine: mean pairwise cosine above this is collapse.
        patience: consecutive failed checks before the alarm.
        stop_on_collapse: stop the run at the alarm.

    Attributes:
        alarm: the alarm message once raised, else None.
        alarm_step: global step of the alarm, else None.
    """

    def __init__(
        self,
        watch: Sequence[str] = ("context", "target"),
        min_effective_rank_fraction: float = 0.05,
        min_std_ratio: float = 0.2,
        max_mean_cosine: float = 0.95,
        patience: int = 3,
        stop_on_collapse: bool = False,
    ) -> None:
        super().__init__()
        self.watch = tuple(watch)
        self.min_effective_rank_fraction = min_effective_rank_fraction
        self.min_std_ratio = min_std_ratio
        self.max_mean_cosine = max_mean_cosine
        self.patience = patience
        self.stop_on_collapse = stop_on_collapse
        self.failed_checks = 0
        self.alarm: str | None = None
        self.alarm_step: int | None = None

    def symptoms(self, name: str, monitors: EmbeddingMonitors) -> list[str]:
        """What is wrong with one set of embeddings (empty when healthy)."""
        found = []
        if monitors.effective_rank_fraction < self.min_effective_rank_fraction:
            found.append(
                f"{name} effective rank {monitors.effective_rank:.2f} "
                f"({monitors.effective_rank_fraction:.1%} of the width, minimum "
                f"{self.min_effective_rank_fraction:.1%})"
            )
        if monitors.std_ratio < self.min_std_ratio:
            found.append(
                f"{name} per-dimension std ratio {monitors.std_ratio:.3f} (minimum {self.min_std_ratio})"
            )
        if monitors.mean_cosine > self.max_mean_cosine:
            found.append(
                f"{name} mean pairwise cosine {monitors.mean_cosine:.4f} (maximum {self.max_mean_cosine})"
            )
        return found

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        monitors = outputs.get("monitors") if isinstance(outputs, dict) else None
        if not monitors:
            return
        found = [s for name in self.watch if name in monitors for s in self.symptoms(name, monitors[name])]
        collapsed = trainer.strategy.reduce_boolean_decision(bool(found), all=False)
        self.failed_checks = self.failed_checks + 1 if collapsed else 0
        pl_module.log("monitor/collapse_checks_failed", float(self.failed_checks))
        if self.failed_checks < self.patience or self.alarm is not None:
            return
        self.alarm_step = trainer.global_step
        self.alarm = (
            f"representation collapse at step {trainer.global_step}: "
            + "; ".join(found or ["another process reported collapse"])
            + f" for {self.patience} checks in a row. The EMA teacher, the predictor and the variance/covariance "
            "terms are what prevent it: check ema_momentum, loss_weights.variance / covariance and that a "
            "predictor is configured."
        )
        rank_zero_warn(self.alarm)
        if self.stop_on_collapse:
            log.error("stopping the run: %s", self.alarm)
            trainer.should_stop = True
