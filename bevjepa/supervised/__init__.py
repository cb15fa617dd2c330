"""Supervised training of the BEV encoder (the upper-bound baseline and the end-to-end smoke path)."""

from bevjepa.supervised.occupancy_pretrain import SupervisedOccupancyPretrainModule

__all__ = ["SupervisedOccupancyPretrainModule"]
