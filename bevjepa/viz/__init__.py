"""Bird's-eye-view pictures of points, voxels, boxes and BEV maps."""
