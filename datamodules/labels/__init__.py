"""Probe labels (never used by pretraining): BEV occupancy, map rasters, annotation boxes, ego trajectory and
ego status."""

from datamodules.labels.annotation_boxes import (
    AnnotationBoxes,
    future_agent_boxes,
    global_boxes_to_lidar,
    sample_boxes_lidar,
    track_instances,
)
from datamodules.labels.ego_status import EGO_STATUS_FEATURES, ego_status, ego_status_from_poses
from datamodules.labels.map_rasters import MAP_LAYERS, map_patch, map_rasters
from datamodules.labels.occupancy_labels import (
    CLASS_NAMES,
    FREE,
    IGNORE,
    STATIC_OBSTACLE,
    VEHICLE,
    VULNERABLE,
    occupancy_class,
    occupancy_label,
    occupancy_labels_over_time,
)
from datamodules.labels.trajectories import ego_future_trajectory, future_ego_to_global

__all__ = [
    "CLASS_NAMES",
    "EGO_STATUS_FEATURES",
    "FREE",
    "IGNORE",
    "MAP_LAYERS",
    "STATIC_OBSTACLE",
    "VEHICLE",
    "VULNERABLE",
    "AnnotationBoxes",
    "ego_future_trajectory",
    "ego_status",
    "ego_status_from_poses",
    "future_agent_boxes",
    "future_ego_to_global",
    "global_boxes_to_lidar",
    "map_patch",
    "map_rasters",
    "occupancy_class",
    "occupancy_label",
    "occupancy_labels_over_time",
    "sample_boxes_lidar",
    "track_instances",
]
