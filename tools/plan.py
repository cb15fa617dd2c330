"""Planning in embedding space: latent MPC with a pretrained JEPA, closed loop in held-out synthetic towns
against baselines, open loop on logs, and the world-model audits; one command to a results table.

  python tools/plan.py --ckpt JEPA.ckpt --episodes 50 --out outputs/plan
  python tools/plan.py --ckpt JEPA.ckpt --episodes 4 --out /tmp/plan --heads outputs/plan/heads.pt --no-audits

Policies (closed loop): latent MPC with CEM (``jepa_mpc_cem``) and with random shooting at the same number of
candidates (``jepa_mpc_random_shooting``), constant velocity, the ego-status MLP (it sees only the ego's
motion) and CEM on the simulator's true cost map (``privileged_cem``, the upper bound). Latent MPC sees the
simulator's sweeps through the DataModule's fusion (``datamodules.live_frames``). Its energy reads the probe
suite's occupancy, map and planning-cost heads, trained here on the training split's frozen tokens (or loaded
with --heads).

Writes to --out: results.json (every number, settings, checkpoint hash, machine), results.md (tables),
heads.pt (the trained heads), episodes/<policy>/seed_<seed>.png (executed path, CEM candidates, goal) and,
for the first --animations episodes of each policy, episodes/<policy>/seed_<seed>.gif (a frame per planning
step: the ego and its path so far, that step's candidates and chosen plan, the traffic, the goal).
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader, Subset

from bevjepa.planning.audits import audit_instant, summarise_audits
from bevjepa.planning.closed_loop import EpisodeResult, EpisodeRunner, EpisodeSettings, hazard_category
from bevjepa.planning.energy import EnergyWeights, LatentPlanningEnergy
from bevjepa.planning.energy_spread import TermSpreadRecorder, spread_table, summarise_spreads
from bevjepa.planning.hazards import HAZARDS, with_hazard
from bevjepa.planning.heads import PlanningHeads, train_planning_heads
from bevjepa.planning.open_loop import open_loop_metrics
from bevjepa.planning.optimizers import CONTROL_BOUNDS, CEMSettings, CrossEntropyMethod, RandomShooting
from bevjepa.planning.pictures import episode_animation, episode_picture
from bevjepa.planning.policies import ConstantVelocityPolicy, EgoStatusPolicy, LatentMPCPolicy
from bevjepa.planning.privileged import PrivilegedPolicy
from bevjepa.planning.world_model import LatentWorldModel
from bevjepa.probes.features import extract_split_features
from bevjepa.probes.frozen_encoder import FrozenEncoder, load_frozen_encoder
from bevjepa.probes.suite import ProbeSettings
from bevjepa.sim.presets import get_preset
from bevjepa.sim.town import Town, generate_town
from bevjepa.sim.types import LOCATIONS
from datamodules.collate import collate_bev_batch
from datamodules.live_frames import LiveSensorFrames
from datamodules.nuscenes import NuScenesBEVDataModule

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "plan" / "synthetic_cpu.yaml"
POLICIES = (
    "jepa_mpc_cem",
    "jepa_mpc_random_shooting",
    "constant_velocity",
    "ego_status_mlp",
    "privileged_cem",
)
HAZARD_POLICIES = ("jepa_mpc_cem", "constant_velocity", "privileged_cem")
# Towns for inspecting the energy: fresh seeds, neither the held-out towns (configs' town_seeds) nor tuned on them.
INSPECTION_TOWN_SEEDS = (2001, 2002, 2003)
DATA_KEYS = ("dataroot", "version", "train_split", "val_split", "lidar_sweeps", "radar", "radar_sweeps")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", type=Path, required=True, help="JEPA pretraining checkpoint")
    parser.add_argument("--episodes", type=int, default=50, help="closed-loop episodes per policy")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="settings (every key documented)")
    parser.add_argument("--heads", type=Path, help="planning heads written by an earlier run (heads.pt)")
    parser.add_argument(
        "--policies", default=",".join(POLICIES), help="comma-separated subset of the policies"
    )
    parser.add_argument("--no-audits", action="store_true", help="skip the audits and the hazard episodes")
    parser.add_argument("--no-open-loop", action="store_true", help="skip open-loop planning on logs")
    parser.add_argument(
        "--no-pictures", action="store_true", help="write no episode pictures (nor animations)"
    )
    parser.add_argument(
        "--animations",
        type=int,
        default=3,
        metavar="N",
        help="animate the first N closed-loop episodes of each policy to GIFs next to their PNGs, a frame per "
        "planning step at 2.5 fps (about a second of rendering each; 0: none)",
    )
    parser.add_argument(
        "--inspect-energy",
        type=int,
        default=0,
        metavar="EPISODES",
        help="instead of the evaluation: drive this many latent-MPC (CEM) episodes in fresh towns that are "
        f"not held out (town seeds {list(INSPECTION_TOWN_SEEDS)}), record each energy term's spread across "
        "the candidates of every plan, and write energy_spread.json (the config's energy weights come from it)",
    )
    parser.add_argument("--device", default="cpu", help="device of the world model (cpu, cuda)")
    return parser.parse_args(argv)


def datamodule(data: dict, frozen: FrozenEncoder, future_voxels: bool) -> NuScenesBEVDataModule:
    settings = {key: data[key] for key in DATA_KEYS if key in data}
    module = NuScenesBEVDataModule(
        **settings,
        grid=frozen.grid,
        future_steps=data.get("future_steps", 6),
        future_voxels=future_voxels,
        labels=True,
        batch_size=data.get("batch_size", 8),
        num_workers=data.get("num_workers", 1),
    )
    if module.in_channels != frozen.in_channels:
        raise SystemExit(
            f"the data gives {module.in_channels} voxel features, the checkpoint expects {frozen.in_channels}: "
            "use the pretraining config's sensor settings"
        )
    return module


def planning_heads(args: argparse.Namespace, config: dict, frozen: FrozenEncoder) -> PlanningHeads:
    """Heads from --heads, or trained on the training split's frozen tokens (and saved to --out)."""
    if args.heads is not None:
        return PlanningHeads.load(args.heads)
    data, heads = config["data"], config["heads"]
    module = datamodule(data, frozen, future_voxels=False)
    loader = DataLoader(
        module.dataset(data.get("train_split", "train")),
        batch_size=module.batch_size,
        num_workers=module.num_workers,
        collate_fn=collate_bev_batch,
    )
    print(f"encoding the training split ({len(loader.dataset)} samples) for the planning heads", flush=True)
    features = extract_split_features(loader, [frozen], 0, total=len(loader))
    settings = ProbeSettings(
        steps=heads["steps"],
        batch_size=heads["batch_size"],
        learning_rate=heads["learning_rate"],
        hidden_dim=heads["hidden_dim"],
        ego_hidden_dim=heads["ego_status_hidden"],
        seed=config["seed"],
    )
    trained = train_planning_heads(
        features, frozen.name, frozen.grid, frozen.token_patch, settings, heads["ego_status_steps"]
    )
    trained.save(args.out / "heads.pt")
    return trained


def cem_settings(config: dict, horizon: int) -> CEMSettings:
    """The config's CEM settings at the horizon the world model and data allow."""
    return CEMSettings(**{**config["cem"], "horizon": horizon})


def planning_energy(
    world_model: LatentWorldModel, heads: PlanningHeads, config: dict
) -> LatentPlanningEnergy:
    return LatentPlanningEnergy(
        world_model,
        EnergyWeights(**config["energy"]),
        cost_map=heads.cost_map,
        collision_map=heads.collision_map,
        off_road_map=heads.off_road_map,
    )


def make_policies(
    names: list[str], world_model: LatentWorldModel, heads: PlanningHeads, config: dict, horizon: int
) -> dict:
    settings = cem_settings(config, horizon)
    energy = planning_energy(world_model, heads, config)
    cem = CrossEntropyMethod(CONTROL_BOUNDS, settings)
    makers = {
        "jepa_mpc_cem": lambda: LatentMPCPolicy(energy, cem, "jepa_mpc_cem"),
        "jepa_mpc_random_shooting": lambda: LatentMPCPolicy(
            energy, RandomShooting(CONTROL_BOUNDS, horizon, cem.evaluations), "jepa_mpc_random_shooting"
        ),
        "constant_velocity": lambda: ConstantVelocityPolicy(horizon),
        "ego_status_mlp": lambda: EgoStatusPolicy(heads.ego_status_mlp),
        "privileged_cem": lambda: PrivilegedPolicy(CrossEntropyMethod(CONTROL_BOUNDS, settings)),
    }
    unknown = set(names) - set(makers)
    if unknown:
        raise SystemExit(f"unknown policies {sorted(unknown)}; choose from {', '.join(POLICIES)}")
    return {name: makers[name]() for name in names}


def aggregate(results: list[EpisodeResult]) -> dict:
    """Closed-loop metrics of one policy over its episodes."""
    distance_km = sum(r.distance_m for r in results) / 1000
    collisions = sum(r.collisions for r in results)
    return {
        "episodes": len(results),
        "success_rate": float(np.mean([r.success for r in results])),
        "collisions": collisions,
        "collisions_per_km": collisions / distance_km if distance_km > 0 else float("nan"),
        "km_driven": distance_km,
        "route_completion": float(np.mean([r.route_completion for r in results])),
        "off_road_s_per_episode": float(np.mean([r.off_road_s for r in results])),
        "planning_ms_per_step": float(np.mean([r.planning_ms for r in results])),
    }


def hazard_summary(
    results: list[EpisodeResult], hazard_ids: dict[tuple[int, str], int], faced_from_m: float
) -> dict:
    """Small vs large hazards: of the episodes that faced their hazard (hit it, or drove at least
    ``faced_from_m`` along the route, close enough that going on means hitting it), the share that hit it.
    Stopping or swerving in front of it counts as avoiding it; episodes that ended before facing it (another
    collision, time) are counted apart, since they say nothing about the hazard."""
    counts = {size: {"episodes": 0, "faced": 0, "hit": 0} for size in ("small", "large")}
    for result in results:
        hazard_id = hazard_ids[(result.seed, result.location)]
        category = result.hazards_in_path.get(hazard_id)
        if category is None:
            continue
        size = counts[hazard_category(category)]
        hit = hazard_id in result.hazards_hit
        size["episodes"] += 1
        size["faced"] += hit or result.progress_m >= faced_from_m
        size["hit"] += hit
    summary = {}
    for size, count in counts.items():
        summary[f"{size}_episodes"] = count["episodes"]
        summary[f"{size}_faced"] = count["faced"]
        summary[f"{size}_hit_rate"] = count["hit"] / count["faced"] if count["faced"] else float("nan")
    return summary


def machine() -> str:
    """The machine the timings come from."""
    cpu = platform.processor() or platform.machine()
    try:
        names = [
            line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")
        ]
        cpu = f"{names[0]} x{len(names)}"
    except (OSError, IndexError):
        pass
    threads = torch.get_num_threads()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, torch threads {threads}, {gpu}"


def results_markdown(results: dict) -> str:
    lines = [
        f"# Planning with the JEPA world model ({results['checkpoint']['path']})",
        "",
        f"Closed loop: {results['episodes_per_policy']} episodes per policy in held-out synthetic towns "
        f"(town seeds {results['settings']['episodes']['town_seeds']}), goal "
        f"{results['settings']['episodes']['goal_distance_m']} m along the route within "
        f"{results['settings']['episodes']['max_duration_s']} s. Planning time on {results['machine']}.",
        "",
        "| policy | success | collisions / km | route completion | off-road s / episode | planning ms / step |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in results["closed_loop"].items():
        lines.append(
            f"| {name} | {row['success_rate']:.0%} | {row['collisions_per_km']:.2f} ({row['collisions']} in "
            f"{row['km_driven']:.2f} km) | {row['route_completion']:.0%} | {row['off_road_s_per_episode']:.2f} | "
            f"{row['planning_ms_per_step']:.1f} |"
        )
    if results.get("hazards"):
        lines += [
            "",
            "Hazard on the lane: hit rate over the episodes that faced the hazard (hit it, or came within "
            f"{results['settings']['audits']['hazard_approach_m']:g} m of it along the route: stopping or swerving "
            "in front of it is avoiding it; lower is better), of the episodes with the hazard in the ego's path:",
            "",
            "| policy | small | large |",
            "|---|---|---|",
        ]
        for name, row in results["hazards"].items():
            cells = [
                f"{row[f'{size}_hit_rate']:.0%} of {row[f'{size}_faced']} faced ({row[f'{size}_episodes']} episodes)"
                if row[f"{size}_faced"]
                else f"none of {row[f'{size}_episodes']} episodes faced it"
                for size in ("small", "large")
            ]
            lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    audits = results.get("audits")
    if audits:
        lines += [
            "",
            f"World-model audits over {audits['instants']} moments: a turn's prediction is closer to its own true "
            f"outcome than to the opposite turn's in {audits['turn_prediction_closer_to_own_outcome']:.0%} of cases "
            f"(mean margin {audits['turn_prediction_margin_mean']:.4f}); Spearman rank correlation of latent vs true "
            f"goal distance: mean {audits['latent_vs_true_goal_distance_spearman_mean']:.3f}, median "
            f"{audits['latent_vs_true_goal_distance_spearman_median']:.3f}.",
        ]
    open_loop = results.get("open_loop")
    if open_loop and open_loop.get("samples"):
        lines += [
            "",
            f"Open loop on {open_loop['samples']} logged validation keyframes (goal: the logged keyframe at the "
            f"planner's horizon, {results['settings']['cem']['horizon'] * 0.5:g} s):",
            "",
            "| metric | 1s | 2s | 3s |",
            "|---|---|---|---|",
        ]
        for metric in ("l2_avg", "l2_at", "collision_avg", "collision_at"):
            values = [open_loop.get(f"{metric}_{h}", float("nan")) for h in ("1s", "2s", "3s")]
            lines.append(f"| {metric} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    lines += ["", f"Wall time: {results['timings']}"]
    return "\n".join(lines) + "\n"


def inspect_energy(
    args: argparse.Namespace,
    config: dict,
    world_model: LatentWorldModel,
    heads: PlanningHeads,
    horizon: int,
    runner_for,
    town_settings,
) -> dict:
    """Each energy term's spread across candidates over the plans of ``--inspect-energy`` latent-MPC episodes in
    the inspection towns; written to energy_spread.json."""
    recorder = TermSpreadRecorder(planning_energy(world_model, heads, config))
    settings = cem_settings(config, horizon)
    policy = LatentMPCPolicy(recorder, CrossEntropyMethod(CONTROL_BOUNDS, settings), "jepa_mpc_cem")
    episodes = []
    for index in range(args.inspect_energy):
        town_seed = INSPECTION_TOWN_SEEDS[index % len(INSPECTION_TOWN_SEEDS)]
        town = generate_town(LOCATIONS[index % len(LOCATIONS)], town_seed, town_settings)
        result = runner_for(town).run(policy, town, config["episodes"]["first_episode_seed"] + 30_000 + index)
        episodes.append(result.summary())
        print(f"inspection episode {index + 1}/{args.inspect_energy}: {result.summary()}", flush=True)
    summary = summarise_spreads(recorder.spreads, recorder.weights, settings.iterations)
    inspection = {
        "checkpoint": str(args.ckpt),
        "town_seeds": list(INSPECTION_TOWN_SEEDS),
        "horizon": horizon,
        "weights": config["energy"],
        "planning_ms_per_step": float(np.mean([e["planning_ms"] for e in episodes])),
        "machine": machine(),
        "spread": summary,
        "episodes": episodes,
    }
    (args.out / "energy_spread.json").write_text(json.dumps(inspection, indent=2))
    print(spread_table(summary))
    print(f"planning ms per step (horizon {horizon}): {inspection['planning_ms_per_step']:.1f}")
    return inspection


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    config = yaml.safe_load(args.config.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    frozen = load_frozen_encoder("jepa", args.ckpt)
    world_model = LatentWorldModel(frozen.source.to(args.device))
    heads = planning_heads(args, config, frozen).to(args.device)
    heads_done = time.perf_counter()
    data, episodes = config["data"], config["episodes"]
    horizon = min(config["cem"]["horizon"], world_model.max_steps, data.get("future_steps", 6))
    names = [n.strip() for n in args.policies.split(",") if n.strip()]
    policies = make_policies(names, world_model, heads, config, horizon)

    def live_frames(location: str) -> LiveSensorFrames:
        return LiveSensorFrames(
            frozen.grid, data["lidar_sweeps"], data["radar"], data["radar_sweeps"], location=location
        )

    preset = get_preset(episodes["preset"])
    settings = EpisodeSettings(
        goal_distance_m=episodes["goal_distance_m"],
        goal_tolerance_m=episodes["goal_tolerance_m"],
        max_duration_s=episodes["max_duration_s"],
        waypoint_distance_m=episodes["waypoint_distance_m"],
        lidar_sweeps=data["lidar_sweeps"],
        stop_on_collision=episodes["stop_on_collision"],
    )
    towns: dict[int, Town] = {}

    def town_of(index: int) -> Town:
        seeds = episodes["town_seeds"]
        town_seed = seeds[index % len(seeds)]
        if town_seed not in towns:
            location = LOCATIONS[(index % len(seeds)) % len(LOCATIONS)]
            towns[town_seed] = generate_town(location, town_seed, preset.simulator.town)
        return towns[town_seed]

    runners: dict[str, EpisodeRunner] = {}

    def runner_for(town: Town) -> EpisodeRunner:
        if town.location not in runners:
            runners[town.location] = EpisodeRunner(preset.simulator_for(town.location), settings, live_frames)
        return runners[town.location]

    if args.inspect_energy:
        return inspect_energy(args, config, world_model, heads, horizon, runner_for, preset.simulator.town)

    closed_loop: dict[str, list[EpisodeResult]] = {name: [] for name in policies}
    for index in range(args.episodes):
        town, seed = town_of(index), episodes["first_episode_seed"] + index
        for name, policy in policies.items():
            result = runner_for(town).run(policy, town, seed)
            closed_loop[name].append(result)
            if not args.no_pictures:
                picture = episode_picture(result, town, args.out / "episodes" / name / f"seed_{seed}.png")
                if index < args.animations:
                    episode_animation(result, town, picture.with_suffix(".gif"))
            print(f"episode {index + 1}/{args.episodes} {name}: {result.summary()}", flush=True)
    closed_done = time.perf_counter()

    hazards, hazard_episodes, audits = {}, {}, {}
    if not args.no_audits:
        hazard_results: dict[str, list[EpisodeResult]] = {n: [] for n in HAZARD_POLICIES if n in policies}
        hazard_ids: dict[tuple[int, str], int] = {}
        for kind in HAZARDS:
            for index in range(config["audits"]["hazard_episodes"]):
                town, seed = town_of(index), episodes["first_episode_seed"] + 10_000 + index
                runner = runner_for(town)
                placed = with_hazard(town, runner.config, seed, kind, config["audits"]["hazard_distance_m"])
                hazard_ids[(seed, town.location)] = len(town.static.objects)
                for name in hazard_results:
                    result = runner.run(policies[name], placed, seed)
                    hazard_results[name].append(result)
                    print(f"hazard {kind} {index + 1}: {name}: {result.summary()}", flush=True)
        audit = config["audits"]
        faced_from_m = audit["hazard_distance_m"] - audit["hazard_approach_m"]
        hazards = {name: hazard_summary(rs, hazard_ids, faced_from_m) for name, rs in hazard_results.items()}
        hazard_episodes = {name: [r.summary() for r in rs] for name, rs in hazard_results.items()}
        instants = []
        for index in range(config["audits"]["instants"]):
            town = town_of(index)
            instants.append(
                audit_instant(
                    world_model,
                    runner_for(town),
                    live_frames,
                    town,
                    episodes["first_episode_seed"] + 20_000 + index,
                    yaw_rate=config["audits"]["turn_yaw_rate"],
                )
            )
        audits = summarise_audits(instants)
    audits_done = time.perf_counter()

    open_loop = {}
    if not args.no_open_loop and config["open_loop"]["max_batches"]:
        module = datamodule(data, frozen, future_voxels=True)
        dataset = module.dataset(data.get("val_split", "val"))
        dataset = Subset(
            dataset, range(min(len(dataset), config["open_loop"]["max_batches"] * module.batch_size))
        )
        loader = DataLoader(dataset, batch_size=module.batch_size, collate_fn=collate_bev_batch)
        energy = policies["jepa_mpc_cem"].energy if "jepa_mpc_cem" in policies else None
        if energy is not None:
            cem = CrossEntropyMethod(CONTROL_BOUNDS, cem_settings(config, horizon))
            open_loop = open_loop_metrics(energy, cem, loader, seed=config["seed"])
    finished = time.perf_counter()

    results = {
        "checkpoint": {"path": str(args.ckpt), "sha256": frozen.sha256, "global_step": frozen.global_step},
        "config": str(args.config),
        "settings": config,
        "episodes_per_policy": args.episodes,
        "machine": machine(),
        "closed_loop": {name: aggregate(rs) for name, rs in closed_loop.items()},
        "episodes": {name: [r.summary() for r in rs] for name, rs in closed_loop.items()},
        "hazards": hazards,
        "hazard_episodes": hazard_episodes,
        "audits": audits,
        "open_loop": open_loop,
        "timings": {
            "heads_s": round(heads_done - started, 1),
            "closed_loop_s": round(closed_done - heads_done, 1),
            "audits_s": round(audits_done - closed_done, 1),
            "open_loop_s": round(finished - audits_done, 1),
            "total_s": round(finished - started, 1),
        },
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    markdown = results_markdown(results)
    (args.out / "results.md").write_text(markdown)
    print(markdown)
    return results


if __name__ == "__main__":
    main()
