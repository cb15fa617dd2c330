"""How much of the ego's own speed frozen features show: a closed-form ridge regression from the whole token
grid of a keyframe to the ego's speed then, fitted on the training split and scored (R^2) on another.

One ego-motion-compensated keyframe shows the ego's speed only indirectly (older sweeps drawn where the
sensor was, the traffic around it), and scene-only planners are judged mostly on it: open-loop L2 is dominated
by how far the ego goes. This probe says how much of it an encoder keeps.
"""

import torch

from bevjepa.probes.kernel_ridge import KernelRidge


def ego_speed_r2(
    train_tokens: torch.Tensor,
    train_speed: torch.Tensor,
    eval_tokens: torch.Tensor,
    eval_speed: torch.Tensor,
    ridge: float = 1.0,
) -> float:
    """R^2 on the evaluation samples of a ridge regression of the speed on the flattened tokens.

    Args:
        train_tokens: (S, N, D) frozen tokens of the training samples.
        train_speed: (S,) the ego's speed (m/s) at those keyframes; non-finite values are left out.
        eval_tokens: (S', N, D) tokens of the samples it is scored on.
        eval_speed: (S',) their speeds.
        ridge: regularisation relative to the mean squared norm of the centred training features
            (``KernelRidge``).

    Returns:
        1 - residual / total sum of squares around the evaluation mean (0: no better than a constant; NaN with
        fewer than two usable samples on either side or no spread of the evaluation speeds).
    """
    train_kept, eval_kept = torch.isfinite(train_speed), torch.isfinite(eval_speed)
    if train_kept.sum() < 2 or eval_kept.sum() < 2:
        return float("nan")
    fitted = KernelRidge(ridge).fit([train_tokens[train_kept]], train_speed[train_kept])
    predicted = fitted.predict([eval_tokens[eval_kept]])  # (S',)
    truth = eval_speed[eval_kept].double()
    total = (truth - truth.mean()).square().sum()
    if total <= 0:
        return float("nan")
    return float(1 - (predicted - truth).square().sum() / total)
