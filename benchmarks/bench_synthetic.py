"""Synthetic-world timings: LiDAR sweeps per second at nuScenes density, with world stepping.

One process, one core: a town of the preset is generated, the simulator is reset and warmed up (numba
kernels compiled), then ``--sweeps`` consecutive 50 ms steps are timed piece by piece: world stepping
(traffic and ego), the LIDAR_TOP sweep, and the radars at their 13 Hz rate. "sweeps/s" is LiDAR ray casting
plus world stepping, the rate at which LiDAR data is produced; the last row adds the radars as the recorder
runs them. Generation parallelises over scenes, so a dataset is produced about (cores) times faster.

    python benchmarks/bench_synthetic.py --preset nuscenes --sweeps 100 --out bench_synthetic.json
"""

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from bevjepa.sim.calibration import RADARS
from bevjepa.sim.generate import town_seed
from bevjepa.sim.presets import PRESETS, get_preset
from bevjepa.sim.recorder import RADAR_PERIOD_US
from bevjepa.sim.simulator import Simulator
from bevjepa.sim.town import generate_town


def run(preset_name: str, sweeps: int, seed: int) -> dict:
    """Time ``sweeps`` simulator steps of a preset; returns the measurements."""
    preset = get_preset(preset_name)
    location = preset.locations()[0]
    started = time.perf_counter()
    town = generate_town(location, town_seed(seed, 0), preset.simulator.town)
    town_s = time.perf_counter() - started
    simulator = Simulator(preset.simulator_for(location))
    simulator.reset_world(seed, town)
    simulator.capture_lidar()  # compiles the ray-casting kernels outside the timed loop
    simulator.capture_radar(RADARS[0], simulator.timestamp_us)

    world_s, lidar_s, radar_s, points, radar_sweeps = [], [], 0.0, [], 0
    radars_per_step = 0.0
    for _ in range(sweeps):
        step_start = simulator.timestamp_us
        tick = time.perf_counter()
        simulator.advance()
        tock = time.perf_counter()
        capture = simulator.capture_lidar()
        lidar_done = time.perf_counter()
        world_s.append(tock - tick)
        lidar_s.append(lidar_done - tock)
        points.append(len(capture.data))
        # Radars fire at 13 Hz each: on average 5 x 13 / 20 = 3.25 captures per 50 ms step.
        radars_per_step += len(RADARS) * (simulator.timestamp_us - step_start) / RADAR_PERIOD_US
        while radar_sweeps < int(radars_per_step):
            mount = RADARS[radar_sweeps % len(RADARS)]
            tick = time.perf_counter()
            simulator.capture_radar(mount, simulator.timestamp_us)
            radar_s += time.perf_counter() - tick
            radar_sweeps += 1

    world, lidar = float(np.sum(world_s)), float(np.sum(lidar_s))
    return {
        "preset": preset_name,
        "location": location,
        "sweeps": sweeps,
        "seed": seed,
        "lidar_firings_per_sweep": preset.simulator.lidar.beams * preset.simulator.lidar.azimuth_steps,
        "points_per_sweep_mean": float(np.mean(points)),
        "points_per_sweep_min": int(np.min(points)),
        "points_per_sweep_max": int(np.max(points)),
        "agents": len(simulator.traffic.vehicles) + len(simulator.traffic.pedestrians.people),
        "raycast_boxes": int(len(simulator.raycast_scene().boxes)),
        "town_generation_s": town_s,
        "world_step_ms": 1000 * world / sweeps,
        "lidar_sweep_ms": 1000 * lidar / sweeps,
        "radar_sweep_ms": 1000 * radar_s / max(radar_sweeps, 1),
        "sweeps_per_s": sweeps / (world + lidar),
        "sweeps_per_s_with_radars": sweeps / (world + lidar + radar_s),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="nuscenes", choices=sorted(PRESETS), help="default: nuscenes")
    parser.add_argument("--sweeps", type=int, default=100, help="timed 50 ms steps (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="town and traffic seed (default 0)")
    parser.add_argument("--out", type=Path, help="write the measurements as JSON here")
    args = parser.parse_args()
    if args.sweeps < 1:
        parser.error("--sweeps must be at least 1")

    result = run(args.preset, args.sweeps, args.seed)
    rows = [
        ("LiDAR points per sweep (mean)", f"{result['points_per_sweep_mean']:.0f}"),
        ("world step (traffic + ego)", f"{result['world_step_ms']:.1f} ms"),
        ("LiDAR sweep (ray casting)", f"{result['lidar_sweep_ms']:.1f} ms"),
        ("radar sweep (one radar)", f"{result['radar_sweep_ms']:.1f} ms"),
        ("sweeps/s (LiDAR + world)", f"{result['sweeps_per_s']:.1f}"),
        ("sweeps/s (with 5 radars at 13 Hz)", f"{result['sweeps_per_s_with_radars']:.1f}"),
    ]
    print(
        f"synthetic world, preset {args.preset}, {args.sweeps} sweeps, one core ({result['cpu_count']} on machine)"
    )
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>10}")
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
