"""Pictures of probe predictions next to the ground truth for one held-out sample (LiDAR frame, x right,
y up on the page): occupancy now and at 1/2/3 s, map layers, and the planning cost map with the candidates,
the chosen plan and the logged trajectory."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bevjepa.grid import BevGrid
from bevjepa.probes.features import TokenBatch
from bevjepa.probes.future_occupancy import HORIZON_STEPS, future_labels_on_covered_cells
from bevjepa.probes.heads import IGNORE_INDEX
from bevjepa.probes.module import ProbeModule
from bevjepa.viz.sample_figure import OCCUPANCY_COLOURS, map_image

UNKNOWN_COLOUR = (0.0, 0.0, 0.0)


def occupancy_image(classes: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB of a class map (H, W), black where ignored."""
    image = np.zeros((*classes.shape, 3))
    image[:] = UNKNOWN_COLOUR
    for value, colour in OCCUPANCY_COLOURS.items():
        image[classes == value] = colour
    return image


def _show(ax: Axes, grid: BevGrid, image: np.ndarray, title: str, **kwargs) -> None:
    x_min, y_min, _, x_max, y_max, _ = grid.point_cloud_range
    ax.imshow(image, origin="lower", extent=(x_min, x_max, y_min, y_max), interpolation="nearest", **kwargs)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def probe_picture(module: ProbeModule, batch: TokenBatch, title: str) -> Figure:
    """Predictions of a trained probe module on the first sample of ``batch`` next to its labels.

    Row 1: occupancy now (labels, prediction), map layers (labels, prediction), the cost map of the scene-only
    planning head with every candidate (grey), the chosen plan (red) and the logged trajectory (green).
    Row 2: occupancy labels at 1/2/3 s next to the forecast (or, without a forecast, the present prediction
    reused).
    """
    grid = module.grid
    outputs = module.predict_batch(batch)
    future_labels = future_labels_on_covered_cells(batch.occupancy[:, 1:], batch.poses, batch.valid, grid)
    figure, axes = plt.subplots(2, 6, figsize=(18, 6.6), layout="constrained")
    row = axes[0]
    _show(row[0], grid, occupancy_image(batch.occupancy[0, 0].numpy()), "occupancy now: labels")
    _show(row[1], grid, occupancy_image(outputs["occupancy"][0].numpy()), "occupancy now: probe")
    _show(row[2], grid, map_image(batch.map_rasters[0].numpy()), "map layers: labels")
    _show(row[3], grid, map_image(outputs["map"][0].numpy()), "map layers: probe")
    _show(row[4], grid, outputs["cost_cost"][0, 0].numpy(), "cost map, plans (scene only)", cmap="magma")
    candidates = module.planning.candidates.numpy()
    for candidate in candidates:
        row[4].plot(candidate[:, 0], candidate[:, 1], color=(0.6, 0.6, 0.6), linewidth=0.3, alpha=0.4)
    valid = batch.valid[0].numpy()
    logged = batch.ego_trajectory[0].numpy()[valid]
    row[4].plot(logged[:, 0], logged[:, 1], "o-", color="lime", markersize=3, label="logged")
    chosen = outputs["plan_cost"][0].numpy()
    row[4].plot(chosen[:, 0], chosen[:, 1], "o-", color="red", markersize=3, label="chosen")
    with_status = outputs["plan_cost_with_ego_status"][0].numpy()
    row[4].plot(
        with_status[:, 0], with_status[:, 1], "s--", color="cyan", markersize=3, label="chosen + ego status"
    )
    row[4].legend(fontsize=7, loc="lower right")
    x_min, y_min, _, x_max, y_max, _ = grid.point_cloud_range
    row[4].set_xlim(x_min, x_max)  # fast candidates leave the grid within 3 s
    row[4].set_ylim(y_min, y_max)
    row[5].axis("off")
    forecast = outputs.get("forecast")
    for column, (horizon, step) in enumerate(HORIZON_STEPS.items()):
        label_ax, predicted_ax = axes[1][2 * column], axes[1][2 * column + 1]
        if step > future_labels.shape[1]:
            label_ax.axis("off")
            predicted_ax.axis("off")
            continue
        _show(
            label_ax,
            grid,
            occupancy_image(future_labels[0, step - 1].numpy()),
            f"occupancy {horizon}: labels",
        )
        if forecast is not None and step <= forecast.shape[1]:
            predicted = forecast[0, step - 1].numpy()
            kind = "forecast"
        else:
            predicted = outputs["occupancy"][0].numpy()
            kind = "present prediction reused"
        _show(predicted_ax, grid, occupancy_image(predicted), f"occupancy {horizon}: {kind}")
    figure.suptitle(title, fontsize=11)
    return figure


def pick_picture_sample(batch: TokenBatch) -> int:
    """Index of the sample with the most object cells now (vehicle, vulnerable road user, static obstacle)."""
    now = batch.occupancy[:, 0]
    objects = ((now > 0) & (now != IGNORE_INDEX)).flatten(1).sum(1)
    return int(torch.argmax(objects))
