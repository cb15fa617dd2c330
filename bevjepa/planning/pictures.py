"""A picture of a closed-loop episode: the town's drivable area, the executed path, the candidates and chosen
plans of some planning steps, the goal and what the ego hit (global frame, metres)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import shapely
from matplotlib.collections import LineCollection

from bevjepa.planning.closed_loop import EpisodeResult
from bevjepa.sim.planar import boxes_to_rectangles, rectangle_corners
from bevjepa.sim.town import Town


def _draw_geometry(ax, geometry: shapely.Geometry, **style) -> None:
    for polygon in shapely.get_parts(geometry):
        exterior = np.asarray(polygon.exterior.coords)
        ax.fill(exterior[:, 0], exterior[:, 1], **style)
        for hole in polygon.interiors:
            inner = np.asarray(hole.coords)
            ax.fill(inner[:, 0], inner[:, 1], color="white")


def episode_picture(
    result: EpisodeResult, town: Town, path: Path, plans_every: int = 4, margin_m: float = 25.0
) -> Path:
    """Draw an episode to a PNG.

    Args:
        result: the episode.
        town: its town.
        path: the PNG to write.
        plans_every: the candidates and plan of every this many planning steps are drawn.
        margin_m: view beyond the path and goal.

    Returns:
        ``path``.
    """
    points = np.concatenate([result.path[:, :2], result.goal[None]])
    low, high = points.min(0) - margin_m, points.max(0) + margin_m
    figure, ax = plt.subplots(figsize=(7, 7), layout="constrained")
    window = shapely.box(*low, *high)
    _draw_geometry(ax, shapely.intersection(town.drivable, window), color="0.85", linewidth=0)
    objects = [o for o in town.static.objects if np.all((o.box[:2] > low) & (o.box[:2] < high))]
    if objects:
        corners = rectangle_corners(boxes_to_rectangles(np.array([o.box for o in objects])))
        for outline in corners:
            ax.fill(outline[:, 0], outline[:, 1], color="tab:orange", alpha=0.8, linewidth=0)
    for index, plan in enumerate(result.plans):
        if index % plans_every:
            continue
        if plan.candidates is not None:
            ax.add_collection(LineCollection(plan.candidates, colors="tab:blue", linewidths=0.4, alpha=0.25))
        if plan.trajectory is not None:
            ax.plot(*plan.trajectory.T, color="tab:green", linewidth=1.2)
    ax.plot(*result.path[:, :2].T, color="black", linewidth=2, label="executed path")
    ax.plot(*result.path[0, :2], "o", color="black")
    ax.plot(*result.goal, "*", color="tab:red", markersize=16, label="goal")
    if result.collisions:
        ax.plot(*result.path[-1, :2], "X", color="tab:red", markersize=12, label="collision")
    ax.plot([], [], color="tab:blue", alpha=0.5, label="candidates")
    ax.plot([], [], color="tab:green", label="chosen plan")
    ax.set_xlim(low[0], high[0])
    ax.set_ylim(low[1], high[1])
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=8)
    outcome = "success" if result.success else "failure"
    ax.set_title(
        f"{result.policy}, seed {result.seed}: {outcome}, completion {result.route_completion:.0%}, "
        f"collisions {result.collisions}, off-road {result.off_road_s:.1f} s",
        fontsize=9,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
