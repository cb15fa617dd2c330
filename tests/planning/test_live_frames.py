"""Live sensor frames give the voxels the DataModule builds from the same sweeps written as a nuScenes log."""

import numpy as np
import pytest
import torch

from bevjepa.grid import BevGrid
from bevjepa.sim.nuscenes_writer import write_nuscenes
from bevjepa.sim.presets import get_preset
from bevjepa.sim.recorder import SceneSpec, record_scene
from bevjepa.sim.simulator import Simulator
from bevjepa.sim.town import generate_town
from datamodules.live_frames import LiveSensorFrames
from datamodules.nuscenes_index import NuScenesIndex, open_nuscenes
from datamodules.sample_builder import SampleBuilder
from datamodules.sample_options import SampleOptions

GRID = BevGrid([-38.4, -38.4, -5.0, 38.4, 38.4, 3.0], [0.4, 0.4, 0.25], 8)
LIDAR_SWEEPS, RADAR_SWEEPS = 3, 3


@pytest.fixture(scope="module")
def recorded_log(tmp_path_factory: pytest.TempPathFactory):
    """A 1.5 s scene of the tiny preset, recorded in memory and written as a nuScenes dataroot."""
    preset = get_preset("tiny")
    town = generate_town(preset.locations()[0], 3, preset.simulator.town)
    spec = SceneSpec("scene-0001", 11, 1_532_397_600_000_000, 1.5, 60.0)
    scene = record_scene(Simulator(preset.simulator_for(town.location)), town, spec)
    dataroot = tmp_path_factory.mktemp("live") / "nuscenes"
    write_nuscenes(dataroot, "v1.0-live", [town.map], [scene], seed=0)
    (dataroot / "bevjepa_splits.json").write_text('{"train": ["scene-0001"]}')
    index = NuScenesIndex(
        open_nuscenes(dataroot, "v1.0-live"), LIDAR_SWEEPS, RADAR_SWEEPS, radar=True, future_steps=0
    )
    return scene, index


def _live_voxels_at(scene, keyframe_time_us: int, radar_key_times: dict[str, int]):
    """Feed a log's captures up to a keyframe (radars up to their key capture) into live frames."""
    with LiveSensorFrames(GRID, LIDAR_SWEEPS, True, RADAR_SWEEPS) as frames:
        for capture in scene.captures:
            last = radar_key_times.get(capture.channel, keyframe_time_us)
            if capture.timestamp_us <= last:
                frames.add(capture)
        return frames.voxels()


def test_live_voxels_equal_datamodule_voxels(recorded_log) -> None:
    scene, index = recorded_log
    builder = SampleBuilder(index, SampleOptions(GRID, LIDAR_SWEEPS, True, RADAR_SWEEPS, future_steps=0))
    records = index.records("train")
    assert len(records) >= 2
    for record in records[1:]:  # keyframes with earlier sweeps
        view = builder.keyframe_view(record)
        radar_key_times = {channel: sweeps[0].timestamp_us for channel, sweeps in record.radar_sweeps.items()}
        live = _live_voxels_at(scene, record.timestamp_us, radar_key_times)
        assert live.batch_size == 1 and (live.coords[:, 0] == 0).all()
        assert torch.equal(live.coords[:, 1:], view["coords"].int())
        np.testing.assert_allclose(live.features.numpy(), view["features"].numpy(), atol=1e-5)
        assert view["features"][:, -1].gt(0).any(), "the compared frames must hold radar voxels"


def test_window_keeps_the_latest_sweeps_and_deletes_older_files(recorded_log) -> None:
    scene, _ = recorded_log
    with LiveSensorFrames(GRID, LIDAR_SWEEPS, True, RADAR_SWEEPS) as frames:
        for capture in scene.captures:
            frames.add(capture)
        record = frames.keyframe_record()
        lidar_times = [c.timestamp_us for c in scene.captures if c.channel == "LIDAR_TOP"]
        assert [s.timestamp_us for s in record.lidar_sweeps] == lidar_times[::-1][:LIDAR_SWEEPS]
        kept_files = sorted(p.name for p in frames._folder.iterdir())
        assert len(kept_files) == LIDAR_SWEEPS + 5 * RADAR_SWEEPS
    with pytest.raises(RuntimeError, match="no LiDAR sweep"):
        LiveSensorFrames(GRID).keyframe_record()
