"""The probe suite's results as markdown tables: method x metric, with the config, checkpoint hashes, dataset
and seed every number depends on.

IoU values are percentages; L2 is in metres; collision rates are percentages. ``avg`` is the ST-P3/VAD
convention (mean over all waypoints up to the horizon), ``at`` the UniAD one (the horizon's waypoint only).
"""

import math
from collections.abc import Mapping

from bevjepa.probes.ego_status_probe import EGO_PLANNERS
from bevjepa.probes.future_occupancy import HORIZON_STEPS
from bevjepa.probes.heads import MAP_LAYERS, OCCUPANCY_CLASSES

HORIZONS = tuple(HORIZON_STEPS)
PLANNING_COLUMNS = [
    (f"{metric} {convention} {h}", f"{name}_{convention}_{h}")
    for metric, name in (("L2 (m)", "l2"), ("Col. (%)", "collision"))
    for convention in ("avg", "at")
    for h in HORIZONS
]
SCENE_PLANNER_TITLES = {
    "cost": "cost head, scene only",
    "cost_with_ego_status": "cost head + ego status",
    "ridge": "ridge planner, scene only",
    "ridge_with_ego_status": "ridge planner + ego status",
}
PLAN_DECISION_TITLES = {
    "least_expected_distance": "the candidate nearest, in expectation under the softmax of the scores, to the"
    " candidate the head believes will be driven",
    "lowest_cost": "the best-scored candidate",
}
EGO_PLANNER_TITLES = {
    "ego_status_mlp": "ego-status MLP (ego status only)",
    "constant_velocity": "constant velocity (ego status only)",
    "constant_velocity_yaw_rate": "constant velocity + yaw rate (ego status only)",
    "mean_trajectory": "mean logged trajectory (no ego status, no scene)",
}


def _number(value: float | None, percent: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.1f}" if percent else f"{value:.2f}"


def _spread(m: Mapping[str, float], key: str, percent: bool = False) -> str:
    """``mean ± std`` where the head seeds' results differ at the table's precision (the std is stored as
    ``{key}_std``); the mean alone where they agree."""
    value, std = m.get(key), m.get(f"{key}_std")
    if std is None or math.isnan(std):
        return _number(value, percent)
    spread = _number(std, percent)
    if not spread.strip("0."):
        return _number(value, percent)
    return f"{_number(value, percent)} ± {spread}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _fraction(fraction: float) -> str:
    return f"{100 * fraction:g} %"


def results_markdown(results: Mapping) -> str:
    """Markdown of a ``results.json`` dict (see ``tools/probe.py``)."""
    probes: Mapping[str, Mapping[str, Mapping[str, float]]] = results["probes"]
    ego: Mapping[str, Mapping[str, float]] = results["ego_status_planners"]
    fractions = sorted({f for per_method in probes.values() for f in per_method}, key=float)
    full = fractions[-1]
    dataset, settings = results["dataset"], results["settings"]
    lines = [
        "# Probe suite results",
        "",
        f"- dataset: `{dataset['dataroot']}` version `{dataset['version']}`, train split `{dataset['train_split']}`"
        f" ({dataset['train_samples']} samples), held-out split `{dataset['val_split']}`"
        f" ({dataset['val_samples']} samples), dataset seed {dataset.get('seed', 'n/a')}",
        f"- config: `{results['config_path']}`; probe seed {settings['seed']}, {settings['steps']} optimizer steps"
        f" of batch {settings['batch_size']} per probe, heads hidden width {settings['hidden_dim']} (0 = linear)",
        f"- every probe trained with {settings.get('head_seeds', 1)} head seed(s): numbers are the mean over them;"
        " planning and label-efficiency cells show `mean ± standard deviation` across the seeds where they differ",
    ]
    for name, method in results["methods"].items():
        source = (
            f"`{method['checkpoint']}` sha256 `{method['sha256']}`"
            if method["checkpoint"]
            else method["sha256"]
        )
        lines.append(
            f"- {name}: {method['module_class']}, {method['global_step']} pretraining steps, {source}"
        )
    lines += ["", f"## Frozen-feature probes ({_fraction(float(full))} of the training labels, IoU in %)", ""]
    header = ["method", "occ. mIoU", *(f"occ. {c}" for c in OCCUPANCY_CLASSES), "map mIoU"]
    header += [f"map {layer}" for layer in MAP_LAYERS]
    rows = []
    for name, per_fraction in probes.items():
        m = per_fraction[full]
        rows.append(
            [name, _number(m["occupancy_miou"], True)]
            + [_number(m[f"occupancy_iou_{c}"], True) for c in OCCUPANCY_CLASSES]
            + [_number(m["map_miou"], True)]
            + [_number(m[f"map_iou_{layer}"], True) for layer in MAP_LAYERS]
        )
    lines += _table(header, rows)

    lines += [
        "",
        "## Future occupancy mIoU (%) in the current frame",
        "",
        "Scored on the cells of the current grid that the future keyframe's grid covers. `forecast`: the occupancy"
        " head decodes the world model's predicted tokens (rolled out with the logged actions; each step mapped per"
        " dimension onto the present tokens' statistics, measured on the training split) and the class map"
        " is carried into the current frame; `encoded future (perfect forecast)`: the same path fed the encoder's"
        " tokens of the future keyframes' own sweeps, the ceiling a forecast could reach on it;"
        " `copy last prediction`: the head's prediction now, reused at every"
        " horizon; `copy current labels`: the labels now (ignored cells as free), reused - a reference built"
        " from ground truth, not a method.",
        "",
    ]
    header = ["method", *(f"{h} mIoU" for h in HORIZONS), *(f"{h} objects mIoU" for h in HORIZONS)]
    rows = []

    def future_row(title: str, m: Mapping[str, float], kind: str) -> list[str]:
        return (
            [title]
            + [_number(m.get(f"future_{kind}_{h}_miou"), True) for h in HORIZONS]
            + [_number(m.get(f"future_{kind}_{h}_miou_objects"), True) for h in HORIZONS]
        )

    for name, per_fraction in probes.items():
        m = per_fraction[full]
        if any(key.startswith("future_forecast_") for key in m):
            rows.append(future_row(f"{name} forecast", m, "forecast"))
        if any(key.startswith("future_encoded_future_") for key in m):
            rows.append(future_row(f"{name} encoded future (perfect forecast)", m, "encoded_future"))
        rows.append(future_row(f"{name} copy last prediction", m, "copy_last_prediction"))
    if probes:
        rows.append(
            future_row(
                "copy current labels (reference)", next(iter(probes.values()))[full], "copy_current_labels"
            )
        )
    lines += _table(header, rows)

    # Results written before the decision was a setting chose the best-scored candidate.
    decision = settings.get("planning_decision", "lowest_cost")
    lines += [
        "",
        f"## Open-loop planning ({_fraction(float(full))} of the training labels)",
        "",
        "`avg` = mean over the waypoints up to the horizon (ST-P3/VAD), `at` = the horizon's waypoint (UniAD)."
        " `cost head`: a cost map read from the tokens ranks fixed candidate trajectories; `ridge planner`: the"
        " waypoints regressed in closed form from the whole token grid (no head seed, so no spread)."
        f" The cost heads choose by `{decision}` ({PLAN_DECISION_TITLES[decision]}).",
        "",
    ]
    header = ["planner", *(title for title, _ in PLANNING_COLUMNS)]
    rows = []
    for name, per_fraction in probes.items():
        m = per_fraction[full]
        for head, title in SCENE_PLANNER_TITLES.items():
            rows.append(
                [f"{name} {title}"] + [_spread(m, f"plan_{head}_{key}") for _, key in PLANNING_COLUMNS]
            )
    for planner in EGO_PLANNERS:
        m = ego[full]
        rows.append(
            [EGO_PLANNER_TITLES[planner]]
            + [_spread(m, f"plan_{planner}_{key}") for _, key in PLANNING_COLUMNS]
        )
    lines += _table(header, rows)

    priors = {name: p for name, p in results.get("planning_priors", {}).items() if p.get("fold_l2")}
    if priors:
        scored = "; ".join(
            f"{name} {p['chosen']} ("
            + ", ".join(f"{kind} {_number(value)} m" for kind, value in p["fold_l2"].items())
            + ")"
            for name, p in priors.items()
        )
        lines += [
            "",
            "Candidate prior of each method's cost heads, chosen on contiguous folds of the training split by the"
            f" scene-only head's L2 at the longest horizon: {scored}.",
        ]

    speed_r2 = results.get("ego_speed_r2", {})
    if speed_r2:
        lines += [
            "",
            "## The ego's own speed in the features",
            "",
            "R^2 on the held-out split of a ridge regression from a keyframe's whole token grid to the ego's speed"
            " then, fitted on the training split (0: no better than a constant). One ego-motion-compensated"
            " keyframe shows the speed only indirectly, and it decides most of a scene-only planner's L2.",
            "",
        ]
        lines += _table(["method", "ego speed R^2"], [[name, _number(r2)] for name, r2 in speed_r2.items()])

    lines += ["", "## Label efficiency", ""]
    header = [
        "method",
        "labels",
        "occ. mIoU (%)",
        "map mIoU (%)",
        "cost L2 avg 3s (m)",
        "cost + ego L2 avg 3s (m)",
        "ridge L2 avg 3s (m)",
    ]
    rows = []
    for name, per_fraction in probes.items():
        for fraction in fractions:
            m = per_fraction[fraction]
            rows.append(
                [
                    name,
                    _fraction(float(fraction)),
                    _spread(m, "occupancy_miou", True),
                    _spread(m, "map_miou", True),
                    _spread(m, "plan_cost_l2_avg_3s"),
                    _spread(m, "plan_cost_with_ego_status_l2_avg_3s"),
                    _spread(m, "plan_ridge_l2_avg_3s"),
                ]
            )
    for fraction in fractions:
        m = ego[fraction]
        rows.append(
            [
                "ego-status MLP",
                _fraction(float(fraction)),
                "-",
                "-",
                "-",
                _spread(m, "plan_ego_status_mlp_l2_avg_3s"),
                "-",
            ]
        )
    lines += _table(header, rows)
    return "\n".join(lines) + "\n"
