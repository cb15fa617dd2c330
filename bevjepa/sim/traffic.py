"""Traffic: vehicles and cyclists that follow lanes with car-following speeds and turn at intersections,
and the pedestrians around them.

Vehicles choose a random way at each intersection and drive with the Intelligent Driver Model (IDM)
behind whatever is ahead on their path: another vehicle, the ego, a crossing in use, or their stop line
while the intersection is not theirs. An intersection admits a vehicle onto a connector once no vehicle
holds a connector that crosses or merges with it, first come first served, so paths through an
intersection never collide. Vehicles yield to pedestrians on crossings, and pedestrians only step onto a
crossing when no vehicle is about to pass it.
"""

from dataclasses import dataclass, field

import numpy as np

from bevjepa.sim.intersections import LONG_VEHICLE_M, IntersectionControl
from bevjepa.sim.lane_graph import SHARED_START_M, LaneGraph
from bevjepa.sim.object_classes import BUS, CAR, MOTORCYCLE, RIDDEN_BICYCLE, TRUCK, ObjectClass
from bevjepa.sim.pedestrians import Pedestrians
from bevjepa.sim.types import ObjectState
from bevjepa.sim.walkways import WalkGraph

_PLAN_LANES = 4
_TIGHT_TURN_RADIUS_M = 10.0
_LOOKAHEAD_M = 60.0
EGO_KEY = -1


@dataclass(frozen=True)
class TrafficConfig:
    """Density and driving style of traffic.

    Attributes:
        vehicles_per_km: vehicles per km of lane (connectors excluded).
        pedestrians_per_km: pedestrians per km of walkway path.
        truck_share, bus_share, motorcycle_share, cyclist_share: vehicle mix (the rest are cars).
        child_share, standing_share: share of children, and of pedestrians who stand still.
        max_acceleration, comfortable_deceleration: IDM a and b, m/s^2.
        time_headway_s, min_gap_m: IDM T and s0.
        cyclist_speed_mps: range of cyclists' desired speed.
    """

    vehicles_per_km: float = 14.0
    pedestrians_per_km: float = 25.0
    truck_share: float = 0.08
    bus_share: float = 0.04
    motorcycle_share: float = 0.04
    cyclist_share: float = 0.08
    child_share: float = 0.1
    standing_share: float = 0.1
    max_acceleration: float = 1.8
    comfortable_deceleration: float = 2.5
    time_headway_s: float = 1.3
    min_gap_m: float = 2.0
    cyclist_speed_mps: tuple[float, float] = (3.5, 6.0)


@dataclass
class Vehicle:
    """A vehicle (or cyclist) driving along lanes; its box centre is ``s`` metres along ``lane``.

    Attributes:
        plan: the lanes it will take after the current one.
        desired_speed: fixed speed for cyclists; otherwise a factor on the lanes' speed limits.
    """

    instance_id: int
    kind: ObjectClass
    size: np.ndarray
    lane: int
    s: float
    speed: float
    desired_speed: float
    plan: list[int] = field(default_factory=list)
    acceleration: float = 0.0

    @property
    def is_cyclist(self) -> bool:
        return self.kind in (RIDDEN_BICYCLE, MOTORCYCLE)


@dataclass
class EgoOnLanes:
    """The ego as traffic sees it while it drives its route: lane position, speed, size, lanes ahead."""

    lane: int
    s: float
    speed: float
    length: float
    width: float
    plan: list[int]


@dataclass
class _Occupant:
    key: int  # index into Traffic.vehicles, or EGO_KEY
    s: float
    speed: float
    length: float


class Traffic:
    """All moving agents of a town besides the ego.

    Args:
        lane_graph: lanes vehicles follow.
        walk_graph: paths pedestrians walk.
        config: density and driving style.
        first_instance_id: instance ids of agents start here (static objects hold the ones below).
        keep_clear: ``(lane, s)`` where no vehicle may spawn within 20 m (the ego's start).
        rng: source of all traffic randomness.
    """

    def __init__(
        self,
        lane_graph: LaneGraph,
        walk_graph: WalkGraph,
        config: TrafficConfig,
        first_instance_id: int,
        keep_clear: tuple[int, float],
        rng: np.random.Generator,
    ) -> None:
        self.lanes = lane_graph
        # Plain lists: the per-vehicle logic reads single entries, much faster than from arrays.
        self._length = lane_graph.lengths.tolist()
        self._limit = lane_graph.speed_limit.tolist()
        self._stop_s = lane_graph.stop_s.tolist()
        self._is_connector = lane_graph.is_connector.tolist()
        self.config = config
        self._rng = rng
        self.time = 0.0
        self.vehicles = self._spawn_vehicles(first_instance_id, keep_clear)
        walk_length = sum(float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum()) for p in walk_graph.paths)
        self.pedestrians = Pedestrians(
            walk_graph,
            count=int(round(config.pedestrians_per_km * walk_length / 1000.0)),
            child_share=config.child_share,
            stationary_share=config.standing_share,
            first_instance_id=first_instance_id + len(self.vehicles),
            rng=rng,
        )
        self.intersections = IntersectionControl(lane_graph)

    def _spawn_vehicles(self, first_instance_id: int, keep_clear: tuple[int, float]) -> list[Vehicle]:
        lanes, config, rng = self.lanes, self.config, self._rng
        road_lanes = np.flatnonzero(~lanes.is_connector)
        total_km = lanes.lengths[road_lanes].sum() / 1000.0
        taken: dict[int, list[float]] = {keep_clear[0]: [keep_clear[1]]}
        vehicles = []
        for _ in range(int(round(config.vehicles_per_km * total_km))):
            kind = self._draw_kind()
            candidates = (
                road_lanes[lanes.rank[road_lanes] == 0]
                if kind in (RIDDEN_BICYCLE, MOTORCYCLE)
                else road_lanes
            )
            for _attempt in range(20):
                lane = int(
                    rng.choice(candidates, p=lanes.lengths[candidates] / lanes.lengths[candidates].sum())
                )
                # Start well before the stop line, where nobody needs the intersection yet.
                s = float(rng.uniform(8.0, max(lanes.stop_s[lane] - 10.0, 8.0)))
                if all(abs(s - other) > 20.0 for other in taken.get(lane, [])):
                    break
            else:
                continue
            taken.setdefault(lane, []).append(s)
            if kind is RIDDEN_BICYCLE:
                desired = float(rng.uniform(*config.cyclist_speed_mps))
            else:
                desired = float(rng.uniform(0.85, 1.1))
            vehicle = Vehicle(
                instance_id=first_instance_id + len(vehicles),
                kind=kind,
                size=kind.sample_size(rng),
                lane=lane,
                s=s,
                speed=0.0,
                desired_speed=desired,
            )
            vehicle.speed = 0.7 * self._free_speed(vehicle, lane)
            self._extend_plan(vehicle)
            vehicles.append(vehicle)
        return vehicles

    def _draw_kind(self) -> ObjectClass:
        c = self.config
        shares = np.array([c.truck_share, c.bus_share, c.motorcycle_share, c.cyclist_share])
        kinds = [TRUCK, BUS, MOTORCYCLE, RIDDEN_BICYCLE, CAR]
        return kinds[int(self._rng.choice(5, p=np.append(shares, 1.0 - shares.sum())))]

    def _extend_plan(self, vehicle: Vehicle) -> None:
        last = vehicle.plan[-1] if vehicle.plan else vehicle.lane
        while len(vehicle.plan) < _PLAN_LANES:
            options = self.lanes.successors[last]
            if vehicle.is_cyclist:  # Cyclists keep to the curb lane.
                options = [o for o in options if self.lanes.rank[self.lanes.successors[o][0]] == 0] or options
            if (
                vehicle.size[0] > LONG_VEHICLE_M
            ):  # A truck or bus would swing over the walkway in a tight turn.
                options = [o for o in options if self.lanes.min_radius[o] > _TIGHT_TURN_RADIUS_M] or options
            last = int(self._rng.choice(options))
            vehicle.plan.append(last)

    def _free_speed(self, vehicle: Vehicle, lane: int) -> float:
        if vehicle.kind is RIDDEN_BICYCLE:
            return min(vehicle.desired_speed, self._limit[lane])
        return vehicle.desired_speed * self._limit[lane]

    # ----- one step -------------------------------------------------------------------------------------

    def step(self, dt: float, ego: EgoOnLanes | None, ego_box: np.ndarray) -> float:
        """Advance all agents by ``dt`` seconds, reacting to each other and to the ego.

        Args:
            dt: step length in seconds.
            ego: the ego's lane position while it drives its route, None when it has left it (then
                vehicles only brake for it when it is straight ahead of them).
            ego_box: (7,) the ego's global box.

        Returns:
            The IDM acceleration the ego would get as one of the vehicles (its autopilot's speed control).
        """
        # The ego holds the connector it is on and the one it was admitted to next; nothing off its route.
        self.intersections.release_all_but(EGO_KEY, set() if ego is None else {ego.lane, *ego.plan[:1]})
        if ego is not None and self._is_connector[ego.lane]:
            self.intersections.claim(EGO_KEY, ego.lane, ego.length)
        occupants = self._occupants(ego)
        crossings_in_use = self.pedestrians.crossings_in_use()
        blocked_for_walkers = self._crossings_vehicles_are_about_to_pass(ego)
        self.intersections.admit(list(self._lane_agents(ego)), self.time)

        accelerations = [
            self._idm(v, v.lane, v.s, v.speed, v.size[0], v.plan, i, occupants, crossings_in_use)
            for i, v in enumerate(self.vehicles)
        ]
        if ego is None:
            accelerations = np.minimum(accelerations, self._brake_for_ego_ahead(ego_box))
            ego_acceleration = 0.0
        else:
            ego_acceleration = self._idm(
                None, ego.lane, ego.s, ego.speed, ego.length, ego.plan, EGO_KEY, occupants, crossings_in_use
            )

        for key, acceleration in enumerate(accelerations):
            self._drive(key, acceleration, dt)
        self.pedestrians.step(dt, blocked_for_walkers)
        self.time += dt
        return ego_acceleration

    def ego_acceleration(self, ego: EgoOnLanes) -> float:
        """The IDM acceleration the ego would get now as one of the vehicles."""
        return self._idm(
            None,
            ego.lane,
            ego.s,
            ego.speed,
            ego.length,
            ego.plan,
            EGO_KEY,
            self._occupants(ego),
            self.pedestrians.crossings_in_use(),
        )

    def _occupants(self, ego: EgoOnLanes | None) -> dict[int, list[_Occupant]]:
        """Lane -> vehicles (and the ego) on it."""
        occupants: dict[int, list[_Occupant]] = {}
        for key, v in enumerate(self.vehicles):
            occupants.setdefault(v.lane, []).append(_Occupant(key, v.s, v.speed, float(v.size[0])))
        if ego is not None:
            occupants.setdefault(ego.lane, []).append(_Occupant(EGO_KEY, ego.s, ego.speed, ego.length))
        return occupants

    def _path(self, lane: int, s: float, plan: list[int]) -> list[tuple[int, float]]:
        """``(lane, distance from the vehicle to that lane's start)`` for the lanes ahead, current first."""
        path, offset = [(lane, -s)], self._length[lane] - s
        for next_lane in plan:
            if offset > _LOOKAHEAD_M:
                break
            path.append((next_lane, offset))
            offset += self._length[next_lane]
        return path

    def _idm(self, vehicle, lane, s, speed, length, plan, key, occupants, crossings_in_use) -> float:
        """IDM acceleration of a vehicle (or the ego, ``key == EGO_KEY``) at ``s`` on ``lane``."""
        c = self.config
        path = self._path(lane, s, plan)
        desired = self._desired_speed(vehicle, path)
        gap, leader_speed = self._leader(key, s, length, path, occupants, crossings_in_use)
        free_term = 1.0 - (speed / max(desired, 0.1)) ** 4
        interaction = 0.0
        if gap < np.inf:
            wanted_gap = c.min_gap_m + max(
                speed * c.time_headway_s
                + speed
                * (speed - leader_speed)
                / (2 * np.sqrt(c.max_acceleration * c.comfortable_deceleration)),
                0.0,
            )
            interaction = (wanted_gap / max(gap, 0.1)) ** 2
        return min(max(c.max_acceleration * (free_term - interaction), -8.0), c.max_acceleration)

    def _desired_speed(self, vehicle: Vehicle | None, path: list[tuple[int, float]]) -> float:
        """Desired speed now: each lane's limit, approached with comfortable braking."""
        b = self.config.comfortable_deceleration
        desired = np.inf
        for lane, offset in path:
            limit = self._free_speed(vehicle, lane) if vehicle is not None else self._limit[lane]
            desired = min(desired, (limit**2 + 2 * b * max(offset, 0.0)) ** 0.5)
        return float(desired)

    def _leader(self, key, s, length, path, occupants, crossings_in_use) -> tuple[float, float]:
        """Bumper-to-bumper gap to the nearest thing ahead on the path, and its speed (inf, 0 if none)."""
        best_gap, best_speed = np.inf, 0.0
        for index, (lane, offset) in enumerate(path):
            candidates = [
                (o.s, o) for o in occupants.get(lane, []) if o.key != key and (index > 0 or o.s > s)
            ]
            if self._is_connector[lane]:
                for sibling in self.lanes.siblings[lane]:
                    candidates += [
                        (o.s, o)
                        for o in occupants.get(sibling, [])
                        if o.key != key and o.s < SHARED_START_M and (index > 0 or o.s > s)
                    ]
            for other_s, other in candidates:
                gap = offset + other_s - (length + other.length) / 2
                if gap < best_gap:
                    best_gap, best_speed = gap, other.speed
            for crossing, start, _ in self.lanes.crossing_spans[lane]:
                gap = offset + start - length / 2
                if crossing in crossings_in_use and gap > -0.5 and gap < best_gap:
                    best_gap, best_speed = max(gap, 0.0), 0.0
            next_lane = path[index + 1][0] if index + 1 < len(path) else None
            if next_lane is not None and self._is_connector[next_lane]:
                front_to_lane_end = offset + self._length[lane] - length / 2
                if not self.intersections.holds(key, next_lane) and front_to_lane_end > 0.5:
                    # Not admitted: wait at the stop line (or at once, if already past it).
                    gap = max(offset + self._stop_s[lane] - length / 2, 0.0)
                    return (best_gap, best_speed) if best_gap < gap else (gap, 0.0)
            if best_gap < np.inf:
                break
        return best_gap, best_speed

    def _lane_agents(self, ego: EgoOnLanes | None):
        """``(key, lane, s, speed, length, plan)`` of every vehicle and of the ego while on its route."""
        for key, v in enumerate(self.vehicles):
            yield key, v.lane, v.s, v.speed, float(v.size[0]), v.plan
        if ego is not None:
            yield EGO_KEY, ego.lane, ego.s, ego.speed, ego.length, ego.plan

    def _crossings_vehicles_are_about_to_pass(self, ego: EgoOnLanes | None) -> set[int]:
        """Crossings a pedestrian must not step onto: a moving vehicle reaches them within 3 s, or is on them."""
        blocked = set()
        for _, lane, s, speed, length, plan in self._lane_agents(ego):
            for path_lane, offset in self._path(lane, s, plan)[:3]:
                for crossing, start, end in self.lanes.crossing_spans[path_lane]:
                    front_gap = offset + start - length / 2
                    rear_past = offset + end + length / 2 < 0.0
                    on_it = front_gap <= 0.0 and not rear_past
                    approaching = 0.0 < front_gap < 4.0 + 3.0 * speed and speed > 0.5
                    if on_it or approaching:
                        blocked.add(crossing)
        return blocked

    def _brake_for_ego_ahead(self, ego_box: np.ndarray) -> np.ndarray:
        """(V,) IDM braking for an ego that left its route, for vehicles that have it straight ahead."""
        c = self.config
        positions, headings = self.lanes.poses(
            np.array([v.lane for v in self.vehicles], dtype=np.int64), np.array([v.s for v in self.vehicles])
        )
        sizes = np.array([v.size for v in self.vehicles]).reshape(-1, 3)
        speeds = np.array([v.speed for v in self.vehicles])
        offset = ego_box[:2] - positions  # (V, 2)
        ahead = np.cos(headings) * offset[:, 0] + np.sin(headings) * offset[:, 1]
        aside = -np.sin(headings) * offset[:, 0] + np.cos(headings) * offset[:, 1]
        in_the_way = (
            (ahead > 0.0) & (ahead < _LOOKAHEAD_M) & (np.abs(aside) < (sizes[:, 1] + ego_box[4]) / 2 + 0.5)
        )
        gap = np.maximum(ahead - (sizes[:, 0] + ego_box[3]) / 2, 0.1)
        wanted_gap = c.min_gap_m + speeds * c.time_headway_s
        braking = np.maximum(c.max_acceleration * (1.0 - (wanted_gap / gap) ** 2), -8.0)
        return np.where(in_the_way, braking, np.inf)

    def _drive(self, key: int, acceleration: float, dt: float) -> None:
        """Integrate one vehicle along its lanes, moving onto the next lane of its plan at a lane's end."""
        vehicle = self.vehicles[key]
        new_speed = max(vehicle.speed + acceleration * dt, 0.0)
        vehicle.acceleration = (new_speed - vehicle.speed) / dt
        vehicle.s += 0.5 * (vehicle.speed + new_speed) * dt
        vehicle.speed = new_speed
        while vehicle.s > self._length[vehicle.lane]:
            vehicle.s -= self._length[vehicle.lane]
            if self._is_connector[vehicle.lane]:
                self.intersections.release(key, vehicle.lane)
            vehicle.lane = vehicle.plan.pop(0)
            if self._is_connector[vehicle.lane]:
                self.intersections.claim(key, vehicle.lane, float(vehicle.size[0]))
            self._extend_plan(vehicle)

    # ----- what the sensors and the annotations see ------------------------------------------------------

    def vehicle_states(self) -> list[ObjectState]:
        """Annotated state of every vehicle and cyclist now."""
        states = []
        positions, headings = self.lanes.poses(
            np.array([v.lane for v in self.vehicles], dtype=np.int64), np.array([v.s for v in self.vehicles])
        )
        for vehicle, position, heading in zip(self.vehicles, positions, headings, strict=True):
            length, width, height = vehicle.size
            box = np.array([position[0], position[1], height / 2, length, width, height, heading])
            velocity = vehicle.speed * np.array([np.cos(heading), np.sin(heading)])
            if vehicle.is_cyclist:
                attribute = "cycle.with_rider"
            else:
                attribute = "vehicle.moving" if vehicle.speed > 0.3 else "vehicle.stopped"
            states.append(ObjectState(vehicle.instance_id, vehicle.kind.category, attribute, box, velocity))
        return states

    def states(self) -> list[ObjectState]:
        """Annotated state of every agent now: vehicles and cyclists, then pedestrians."""
        return self.vehicle_states() + self.pedestrians.states()

    def radar_cross_sections(self) -> np.ndarray:
        """(A,) RCS (dBsm) of the agents, in the order of ``states``."""
        kinds = [v.kind for v in self.vehicles] + [p.kind for p in self.pedestrians.people]
        return np.array([k.rcs_dbsm for k in kinds], dtype=np.float32)
