"""Geometry on boxes and rigid transforms shared by data, labels, metrics and visualisation."""
