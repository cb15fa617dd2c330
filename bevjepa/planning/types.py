"""Types shared by the planning modules."""

from collections.abc import Callable

import torch

# Candidate action sequences (B, S, H, A) -> energies (B, S), lower is better.
Energy = Callable[[torch.Tensor], torch.Tensor]
# Tokens (M, N, D) -> a BEV map (M, H, W) on the grid's cells, e.g. a hazard in [0, 1] or a cost.
TokenMap = Callable[[torch.Tensor], torch.Tensor]
