"""The one grid every tensor of a sample is laid on: voxels for the sparse encoder, cells for BEV maps."""

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class BevGrid:
    """A voxel grid over the LiDAR frame and the BEV map the encoder derives from it.

    The single source of the sparse shape, the BEV size and every raster's geometry: nothing else in bevjepa
    hard-codes a range or resolution.

    Attributes:
        point_cloud_range: ``(x_min, y_min, z_min, x_max, y_max, z_max)`` in metres.
        voxel_size: ``(x, y, z)`` edge lengths of one voxel in metres.
        encoder_stride: how many voxels one BEV cell spans in x and y.

    Example (nuScenes): range ``(-51.2, -51.2, -5, 51.2, 51.2, 3)``, voxels ``(0.1, 0.1, 0.2)``, stride 8
    give ``voxel_grid_shape (40, 1024, 1024)``, ``sparse_shape (41, 1024, 1024)``, ``bev_shape (128, 128)``.
    """

    point_cloud_range: tuple[float, float, float, float, float, float] = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0)
    voxel_size: tuple[float, float, float] = (0.1, 0.1, 0.2)
    encoder_stride: int = 8

    def __post_init__(self) -> None:
        # Arguments may arrive as lists from YAML; keep the dataclass hashable.
        object.__setattr__(self, "point_cloud_range", tuple(float(v) for v in self.point_cloud_range))
        object.__setattr__(self, "voxel_size", tuple(float(v) for v in self.voxel_size))
        if len(self.point_cloud_range) != 6 or len(self.voxel_size) != 3:
            raise ValueError(
                f"BevGrid needs 6 range values and 3 voxel sizes, got {self.point_cloud_range} "
                f"and {self.voxel_size}"
            )
        extent = np.subtract(self.point_cloud_range[3:], self.point_cloud_range[:3])
        if np.any(extent <= 0) or np.any(np.asarray(self.voxel_size) <= 0):
            raise ValueError(
                f"BevGrid range {self.point_cloud_range} or voxel size {self.voxel_size} is empty"
            )
        cells = extent / np.asarray(self.voxel_size)
        if not np.allclose(cells, np.round(cells), atol=1e-4):
            raise ValueError(
                f"BevGrid range extent {extent.tolist()} is not a whole number of voxels {self.voxel_size}"
            )
        nx, ny = int(round(cells[0])), int(round(cells[1]))
        if nx % self.encoder_stride or ny % self.encoder_stride:
            raise ValueError(f"BevGrid of {nx}x{ny} voxels is not divisible by stride {self.encoder_stride}")

    @property
    def voxel_grid_shape(self) -> tuple[int, int, int]:
        """Voxels along ``(z, y, x)``."""
        extent = np.subtract(self.point_cloud_range[3:], self.point_cloud_range[:3])
        nx, ny, nz = (int(round(v)) for v in extent / np.asarray(self.voxel_size))
        return nz, ny, nx

    @property
    def sparse_shape(self) -> tuple[int, int, int]:
        """spconv spatial shape ``(z, y, x)``: one extra z layer, as SECOND-style encoders expect."""
        nz, ny, nx = self.voxel_grid_shape
        return nz + 1, ny, nx

    @property
    def bev_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the BEV embedding map: rows along y, columns along x."""
        _, ny, nx = self.voxel_grid_shape
        return ny // self.encoder_stride, nx // self.encoder_stride

    @property
    def bev_cell_size(self) -> tuple[float, float]:
        """``(x, y)`` metres covered by one BEV cell."""
        return self.voxel_size[0] * self.encoder_stride, self.voxel_size[1] * self.encoder_stride

    def bev_cell_centers(self) -> torch.Tensor:
        """Metric centres of all BEV cells, ``(H, W, 2)`` as ``(x, y)``."""
        height, width = self.bev_shape
        cell_x, cell_y = self.bev_cell_size
        xs = self.point_cloud_range[0] + (torch.arange(width, dtype=torch.float64) + 0.5) * cell_x
        ys = self.point_cloud_range[1] + (torch.arange(height, dtype=torch.float64) + 0.5) * cell_y
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        return torch.stack([grid_x, grid_y], dim=-1)

    def metric_to_bev_index(self, xy: torch.Tensor) -> torch.Tensor:
        """BEV ``(row, col)`` indices of metric points ``xy (N, 2)``; -1 in both where outside the grid."""
        cell_x, cell_y = self.bev_cell_size
        col = torch.floor((xy[:, 0].double() - self.point_cloud_range[0]) / cell_x).long()
        row = torch.floor((xy[:, 1].double() - self.point_cloud_range[1]) / cell_y).long()
        height, width = self.bev_shape
        inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
        index = torch.stack([row, col], dim=-1)  # (N, 2)
        index[~inside] = -1
        return index

    def bev_index_to_metric(self, index: torch.Tensor) -> torch.Tensor:
        """Metric ``(x, y)`` centres ``(N, 2)`` of BEV cells given as ``(row, col)`` indices ``(N, 2)``."""
        cell_x, cell_y = self.bev_cell_size
        x = self.point_cloud_range[0] + (index[:, 1].double() + 0.5) * cell_x
        y = self.point_cloud_range[1] + (index[:, 0].double() + 0.5) * cell_y
        return torch.stack([x, y], dim=-1)

    def contains(self, points: torch.Tensor) -> torch.Tensor:
        """Mask ``(N,)`` of points ``(N, >=3)`` inside the range (upper bounds exclusive)."""
        low = torch.as_tensor(self.point_cloud_range[:3], dtype=points.dtype, device=points.device)
        high = torch.as_tensor(self.point_cloud_range[3:], dtype=points.dtype, device=points.device)
        return ((points[:, :3] >= low) & (points[:, :3] < high)).all(dim=1)
