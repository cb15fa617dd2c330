"""Pictures of a closed-loop episode (global frame, metres): a PNG of the town's drivable area, the executed
path, the candidates and chosen plans of some planning steps, the goal and what the ego hit; and a GIF with
one frame per planning step (the ego, its path so far, that step's candidates and plan, the traffic then),
plus a last frame of the outcome."""

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import shapely
from matplotlib.collections import LineCollection
from PIL import Image

from bevjepa.planning.closed_loop import EpisodeResult, PlanRecord
from bevjepa.sim.planar import boxes_to_rectangles, rectangle_corners
from bevjepa.sim.town import Town


def _draw_geometry(ax, geometry: shapely.Geometry, **style) -> None:
    for polygon in shapely.get_parts(geometry):
        exterior = np.asarray(polygon.exterior.coords)
        ax.fill(exterior[:, 0], exterior[:, 1], **style)
        for hole in polygon.interiors:
            inner = np.asarray(hole.coords)
            ax.fill(inner[:, 0], inner[:, 1], color="white")


def _draw_boxes(ax, boxes: np.ndarray, **style) -> list:
    """Fill the footprints of (M, 7) boxes; returns the artists."""
    if not len(boxes):
        return []
    corners = rectangle_corners(boxes_to_rectangles(boxes))
    return [ax.fill(outline[:, 0], outline[:, 1], linewidth=0, **style)[0] for outline in corners]


def _episode_view(result: EpisodeResult, town: Town, margin_m: float, size_in: float):
    """A figure of the episode's surroundings: drivable area, static objects, the goal; returns (figure, ax)."""
    points = np.concatenate([result.path[:, :2], result.goal[None]])
    low, high = points.min(0) - margin_m, points.max(0) + margin_m
    figure, ax = plt.subplots(figsize=(size_in, size_in), layout="constrained")
    window = shapely.box(*low, *high)
    _draw_geometry(ax, shapely.intersection(town.drivable, window), color="0.85", linewidth=0)
    objects = [o for o in town.static.objects if np.all((o.box[:2] > low) & (o.box[:2] < high))]
    _draw_boxes(ax, np.array([o.box for o in objects]).reshape(-1, 7), color="tab:orange", alpha=0.8)
    ax.plot(*result.goal, "*", color="tab:red", markersize=16, label="goal")
    ax.set_xlim(low[0], high[0])
    ax.set_ylim(low[1], high[1])
    ax.set_aspect("equal")
    return figure, ax


def _outcome(result: EpisodeResult) -> str:
    outcome = "success" if result.success else "failure"
    return (
        f"{result.policy}, seed {result.seed}: {outcome}, completion {result.route_completion:.0%}, "
        f"collisions {result.collisions}, off-road {result.off_road_s:.1f} s"
    )


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
    figure, ax = _episode_view(result, town, margin_m, size_in=7)
    for index, plan in enumerate(result.plans):
        if index % plans_every:
            continue
        if plan.candidates is not None:
            ax.add_collection(LineCollection(plan.candidates, colors="tab:blue", linewidths=0.4, alpha=0.25))
        if plan.trajectory is not None:
            ax.plot(*plan.trajectory.T, color="tab:green", linewidth=1.2)
    ax.plot(*result.path[:, :2].T, color="black", linewidth=2, label="executed path")
    ax.plot(*result.path[0, :2], "o", color="black")
    if result.collisions:
        ax.plot(*result.path[-1, :2], "X", color="tab:red", markersize=12, label="collision")
    ax.plot([], [], color="tab:blue", alpha=0.5, label="candidates")
    ax.plot([], [], color="tab:green", label="chosen plan")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(_outcome(result), fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _frame(figure) -> Image.Image:
    """The figure as a palette image (GIF frames hold at most 256 colours)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=figure.dpi)
    return Image.open(buffer).convert("RGB").quantize(colors=128, method=Image.Quantize.FASTOCTREE)


def _body_at(plan: PlanRecord, pose: np.ndarray) -> np.ndarray:
    """(7,) the ego's body box of ``plan`` moved to ``pose = [x, y, yaw]``."""
    heading = np.array([np.cos(plan.ego_pose[2]), np.sin(plan.ego_pose[2])])
    centre_ahead = float(np.dot(plan.ego_box[:2] - plan.ego_pose[:2], heading))
    box = plan.ego_box.copy()
    box[:2] = pose[:2] + centre_ahead * np.array([np.cos(pose[2]), np.sin(pose[2])])
    box[6] = pose[2]
    return box


def episode_animation(
    result: EpisodeResult,
    town: Town,
    path: Path,
    frame_ms: int = 400,
    last_frame_ms: int = 2000,
    margin_m: float = 20.0,
    size_in: float = 5.0,
    dpi: int = 80,
) -> Path:
    """Animate an episode to a GIF: one frame per planning step, then one of the outcome.

    A planning step's frame shows the ego's body and its path so far, the traffic then, that step's
    candidates (faint) and chosen plan; static objects (hazards among them), the drivable area and the goal
    stay. The last frame shows the whole executed path and what the ego hit.

    Args:
        result: the episode (its plans carry the ego and traffic boxes of their time).
        town: its town.
        path: the GIF to write.
        frame_ms: display time of a planning step's frame.
        last_frame_ms: display time of the outcome frame.
        margin_m: view beyond the path and goal.
        size_in, dpi: frame size (inches) and resolution.

    Returns:
        ``path``.
    """
    figure, ax = _episode_view(result, town, margin_m, size_in)
    figure.dpi = dpi
    ax.plot([], [], color="tab:blue", alpha=0.5, label="candidates")
    ax.plot([], [], color="tab:green", label="chosen plan")
    ax.plot([], [], color="tab:purple", label="traffic")
    ax.legend(loc="upper right", fontsize=7)
    seconds_per_row = result.duration_s / max(len(result.path) - 1, 1)
    frames = []
    for index, plan in enumerate(result.plans):
        row = int(round(plan.time_s / seconds_per_row)) if seconds_per_row > 0 else 0
        artists = [*ax.plot(*result.path[: row + 1, :2].T, color="black", linewidth=2)]
        if plan.candidates is not None:
            artists.append(
                ax.add_collection(
                    LineCollection(plan.candidates, colors="tab:blue", linewidths=0.5, alpha=0.3)
                )
            )
        if plan.trajectory is not None:
            artists += ax.plot(*plan.trajectory.T, color="tab:green", linewidth=1.5)
        artists += _draw_boxes(ax, plan.agent_boxes, color="tab:purple", alpha=0.8)
        artists += _draw_boxes(ax, plan.ego_box[None], color="black")
        ax.set_title(
            f"{result.policy}, seed {result.seed}: t = {plan.time_s:.1f} s, plan {index + 1}/{len(result.plans)}",
            fontsize=8,
        )
        frames.append(_frame(figure))
        for artist in artists:
            artist.remove()
    ax.plot(*result.path[:, :2].T, color="black", linewidth=2)
    if result.plans:
        _draw_boxes(ax, _body_at(result.plans[-1], result.path[-1])[None], color="black")
    if result.collisions:
        ax.plot(*result.path[-1, :2], "X", color="tab:red", markersize=12)
    ax.set_title(_outcome(result), fontsize=7)
    frames.append(_frame(figure))
    plt.close(figure)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(
        path,
        save_all=True,
        append_images=frames[1:],
        duration=[frame_ms] * (len(frames) - 1) + [last_frame_ms],
        loop=0,
        optimize=True,
        disposal=1,
    )
    return path
