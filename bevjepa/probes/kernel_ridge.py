"""Closed-form ridge regression in kernel form: the readout of the probes that need no training loop.

With far more features than samples (a flattened token grid has N x D of them, a split a few hundred samples)
the dual form solves an (S, S) system instead of an (F, F) one. The features come in blocks (the token grid;
the ego status): each block's linear kernel is scaled to a mean diagonal of 1, so every block weighs the same
in the fit whatever its width, and the ridge is relative to that unit.
"""

from collections.abc import Sequence

import torch


class KernelRidge:
    """Ridge regression of targets on blocks of features, fitted in closed form.

    Args:
        ridge: regularisation, relative to the mean diagonal of each block's scaled kernel (1 per block).
    """

    def __init__(self, ridge: float = 1.0) -> None:
        if ridge <= 0:
            raise ValueError(f"ridge must be positive, got {ridge}")
        self.ridge = ridge

    def fit(self, blocks: Sequence[torch.Tensor], targets: torch.Tensor) -> "KernelRidge":
        """Fit on S samples.

        Args:
            blocks: (S, F_b) features of each block (more dimensions are flattened).
            targets: (S, O) or (S,) finite values to regress.

        Returns:
            self.
        """
        if not blocks or any(len(block) != len(targets) for block in blocks):
            raise ValueError("every block needs one row per target sample")
        features = [block.flatten(1).double() for block in blocks]
        self._means = [f.mean(dim=0) for f in features]
        self._centred = [f - mean for f, mean in zip(features, self._means, strict=True)]
        kernels = [c @ c.T for c in self._centred]  # (S, S) each
        # A block without spread (one sample, constant features) has a zero kernel: it explains nothing.
        self._scales = [k.diagonal().mean().clamp(min=torch.finfo(k.dtype).tiny) for k in kernels]
        kernel = sum(k / s for k, s in zip(kernels, self._scales, strict=True))
        self._target_mean = targets.double().mean(dim=0)
        identity = torch.eye(len(kernel), dtype=kernel.dtype)
        self._dual = torch.linalg.solve(
            kernel + self.ridge * len(blocks) * identity, targets.double() - self._target_mean
        )  # (S, O) or (S,)
        return self

    def predict(self, blocks: Sequence[torch.Tensor]) -> torch.Tensor:
        """(S', F_b) blocks, as fitted -> (S', O) or (S',) float64 predictions."""
        kernel = sum(
            (block.flatten(1).double() - mean) @ centred.T / scale
            for block, mean, centred, scale in zip(
                blocks, self._means, self._centred, self._scales, strict=True
            )
        )  # (S', S)
        return kernel @ self._dual + self._target_mean
