"""Collapse monitors of a set of embeddings, as pure functions: per-dimension spread, effective rank (RankMe)
and mean pairwise cosine similarity."""

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


def per_dim_std(embeddings: torch.Tensor) -> torch.Tensor:
    """Standard deviation of every dimension of the L2-normalised embeddings ``(N, D)``: ``(D,)``.

    For embeddings spread evenly over the sphere each is about ``1 / sqrt(D)``; collapse drives them to 0.
    """
    return F.normalize(embeddings.float(), dim=1).std(dim=0)


def effective_rank(embeddings: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """RankMe (Garrido et al. 2023): ``exp`` of the entropy of the normalised singular values of ``(N, D)``.

    Between 1 (all embeddings on one line) and ``min(N, D)`` (all directions used equally).
    """
    singular = torch.linalg.svdvals(embeddings.float())
    share = singular / singular.sum().clamp(min=eps) + eps
    return torch.exp(-(share * torch.log(share)).sum())


def mean_pairwise_cosine(embeddings: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity over all pairs of distinct rows of ``(N, D)``, N >= 2 (1 at full collapse)."""
    unit = F.normalize(embeddings.float(), dim=1)
    count = unit.shape[0]
    all_pairs = unit.sum(dim=0).square().sum()  # sum over i, j of cos(i, j), diagonal included
    return (all_pairs - count) / (count * (count - 1))


@dataclass
class EmbeddingMonitors:
    """Collapse indicators of one set of embeddings.

    Attributes:
        std_ratio: mean per-dimension std of normalised embeddings times ``sqrt(D)`` (about 1 when spread
            evenly, 0 at collapse).
        effective_rank: RankMe.
        effective_rank_fraction: RankMe / D.
        mean_cosine: mean pairwise cosine similarity.
    """

    std_ratio: float
    effective_rank: float
    effective_rank_fraction: float
    mean_cosine: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def embedding_monitors(embeddings: torch.Tensor) -> EmbeddingMonitors:
    """All monitors of ``(N, D)`` embeddings."""
    dims = embeddings.shape[1]
    rank = float(effective_rank(embeddings))
    return EmbeddingMonitors(
        std_ratio=float(per_dim_std(embeddings).mean()) * dims**0.5,
        effective_rank=rank,
        effective_rank_fraction=rank / dims,
        mean_cosine=float(mean_pairwise_cosine(embeddings)),
    )
