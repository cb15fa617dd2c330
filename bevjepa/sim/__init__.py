"""A procedural town with ray-cast sensors, written in the nuScenes on-disk format."""
