"""Probe heads on frozen encoders, candidate trajectories and planners, and their evaluation."""
