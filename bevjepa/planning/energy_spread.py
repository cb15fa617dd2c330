"""How much each energy term separates candidates: its spread (standard deviation across the candidates of
one evaluation) at planning moments. A term whose weighted spread is small beside the others' barely moves
the choice, whatever its weight suggests; comparable weighted spreads give every term a say."""

import numpy as np

from bevjepa.planning.energy import EnergyTerms, EnergyWeights, LatentPlanningEnergy


class TermSpreadRecorder(LatentPlanningEnergy):
    """A planning energy that records each unweighted term's spread across candidates at every evaluation.

    Args:
        energy: the energy to evaluate (its world model, weights, heads and footprint).
    """

    def __init__(self, energy: LatentPlanningEnergy) -> None:
        super().__init__(
            energy.world_model,
            energy.weights,
            limits=energy.limits,
            path_points=energy.path_points,
            body_points=energy.body_points,
        )
        self.maps = energy.maps
        self.spreads: list[dict[str, float]] = []

    def evaluate(self, *args, **kwargs) -> EnergyTerms:
        result = super().evaluate(*args, **kwargs)
        for problem in range(result.total.shape[0]):
            self.spreads.append({name: float(term[problem].std()) for name, term in result.terms.items()})
        return result


def summarise_spreads(spreads: list[dict[str, float]], weights: EnergyWeights, iterations: int) -> dict:
    """Median and mean spread of each term, by optimiser iteration, unweighted and weighted.

    Args:
        spreads: the recorder's spreads of one-problem evaluations (closed-loop plans), in evaluation order:
            a plan is ``iterations`` consecutive evaluations.
        weights: the weights the energy ran with.
        iterations: evaluations per plan (CEM iterations).

    Returns:
        ``{"moments": plans, "iteration_<i>": {term: {"median", "mean", "weighted_median", "weighted_mean"}}}``.
    """
    summary: dict = {"moments": len(spreads) // iterations}
    for iteration in range(iterations):
        rows = spreads[iteration::iterations]
        summary[f"iteration_{iteration + 1}"] = {
            name: {
                "median": float(np.median([row[name] for row in rows])),
                "mean": float(np.mean([row[name] for row in rows])),
                "weighted_median": getattr(weights, name) * float(np.median([row[name] for row in rows])),
                "weighted_mean": getattr(weights, name) * float(np.mean([row[name] for row in rows])),
            }
            for name in rows[0]
        }
    return summary


def spread_table(summary: dict) -> str:
    """The summary as a markdown table."""
    lines = [
        f"Energy-term spread (std across candidates) over {summary['moments']} planning moments:",
        "",
        "| iteration | term | median | mean | weighted median | weighted mean |",
        "|---|---|---|---|---|---|",
    ]
    for key, terms in summary.items():
        if not key.startswith("iteration_"):
            continue
        for name, row in terms.items():
            lines.append(
                f"| {key.removeprefix('iteration_')} | {name} | {row['median']:.4g} | {row['mean']:.4g} | "
                f"{row['weighted_median']:.4g} | {row['weighted_mean']:.4g} |"
            )
    return "\n".join(lines)
