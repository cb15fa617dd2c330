"""Pedestrians: they walk the walk graph (walkways and crossings), wait at a crossing while a vehicle is
close, sometimes pause, and a few just stand.
"""

from dataclasses import dataclass

import numpy as np

from bevjepa.sim.object_classes import ADULT, CHILD, ObjectClass
from bevjepa.sim.planar import cumulative_length
from bevjepa.sim.types import ObjectState
from bevjepa.sim.walkways import WalkGraph


@dataclass
class Pedestrian:
    """One pedestrian on the walk graph.

    Attributes:
        path: walk-graph path it is on; s: distance walked along it in its direction of travel.
        forward: True when walking from the path's first vertex to its last.
        walking_speed: preferred speed; speed: current speed.
        next_path: the path chosen at the vertex ahead, once there and waiting to take it.
        pause_s: time left standing still.
        stationary: stands still the whole time.
    """

    instance_id: int
    kind: ObjectClass
    size: np.ndarray
    path: int
    s: float
    forward: bool
    walking_speed: float
    speed: float
    yaw: float
    next_path: int | None = None
    pause_s: float = 0.0
    stationary: bool = False


class Pedestrians:
    """All pedestrians of a town.

    Args:
        graph: where they walk.
        count: how many.
        child_share, stationary_share: share of children and of people who stand still.
        first_instance_id: instance id of the first pedestrian (the others follow).
        rng: source of their randomness (spawn positions, choices at vertices, pauses).
    """

    def __init__(
        self,
        graph: WalkGraph,
        count: int,
        child_share: float,
        stationary_share: float,
        first_instance_id: int,
        rng: np.random.Generator,
    ) -> None:
        self._graph = graph
        self._arcs = [cumulative_length(p) for p in graph.paths]
        self._rng = rng
        # All paths on one arc-length axis, a metre apart, so that all poses take one interpolation.
        lengths = np.array([arc[-1] for arc in self._arcs])
        self._flat_start = np.concatenate([[0.0], np.cumsum(lengths + 1.0)[:-1]])
        self._flat_arc = np.concatenate(
            [start + arc for start, arc in zip(self._flat_start, self._arcs, strict=True)]
        )
        self._flat_points = np.concatenate(graph.paths)
        sizes = np.array([len(path) for path in graph.paths])
        self._first_vertex = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self._last_segment = self._first_vertex + sizes - 2
        step = np.diff(self._flat_points, axis=0, append=self._flat_points[-1:])  # last rows are never used
        self._segment_heading = np.arctan2(step[:, 1], step[:, 0])
        walkway_paths = np.flatnonzero(graph.crossing < 0)
        lengths = np.array([self._arcs[p][-1] for p in walkway_paths])
        self.people: list[Pedestrian] = []
        for index in range(count):
            path = int(rng.choice(walkway_paths, p=lengths / lengths.sum()))
            kind = CHILD if rng.random() < child_share else ADULT
            walking_speed = rng.uniform(1.0, 1.6) * (0.8 if kind is CHILD else 1.0)
            person = Pedestrian(
                instance_id=first_instance_id + index,
                kind=kind,
                size=kind.sample_size(rng),
                path=path,
                s=float(rng.uniform(0.0, self._arcs[path][-1])),
                forward=bool(rng.random() < 0.5),
                walking_speed=walking_speed,
                speed=walking_speed,
                yaw=0.0,
                stationary=bool(rng.random() < stationary_share),
            )
            person.yaw = float(self._poses([person])[1][0])
            if person.stationary:
                person.speed = 0.0
            self.people.append(person)

    def crossings_in_use(self) -> set[int]:
        """Crossings someone is walking over now."""
        return {int(self._graph.crossing[p.path]) for p in self.people if self._graph.crossing[p.path] >= 0}

    def step(self, dt: float, blocked_crossings: set[int]) -> None:
        """Walk everyone on by ``dt`` seconds; nobody steps onto a crossing in ``blocked_crossings``."""
        for person in self.people:
            if person.stationary:
                continue
            if person.pause_s > 0.0:
                person.pause_s -= dt
                person.speed = 0.0
                continue
            remaining = dt * person.walking_speed
            while remaining > 0.0:
                length = self._arcs[person.path][-1]
                if person.s + remaining < length:
                    person.s += remaining
                    person.speed = person.walking_speed
                    break
                remaining -= length - person.s
                person.s = length
                if person.next_path is None:
                    person.next_path = self._choose_next(person)
                    if self._rng.random() < 0.05:
                        person.pause_s = self._rng.uniform(2.0, 6.0)
                        person.speed = 0.0
                        break
                if self._graph.crossing[person.next_path] in blocked_crossings:
                    person.speed = 0.0
                    break
                vertex = self._end_vertex(person)
                person.path, person.next_path, person.s = person.next_path, None, 0.0
                person.forward = bool(self._graph.ends[person.path, 0] == vertex)
        _, headings = self._poses(self.people)
        for person, heading in zip(self.people, headings, strict=True):
            if person.speed > 0.0:
                person.yaw = float(heading)

    def states(self) -> list[ObjectState]:
        """Annotated state of every pedestrian now."""
        states = []
        positions, headings = self._poses(self.people)
        for person, position, heading in zip(self.people, positions, headings, strict=True):
            length, width, height = person.size
            box = np.array([position[0], position[1], height / 2, length, width, height, person.yaw])
            velocity = person.speed * np.array([np.cos(heading), np.sin(heading)])
            attribute = "pedestrian.moving" if person.speed > 0.2 else "pedestrian.standing"
            states.append(ObjectState(person.instance_id, person.kind.category, attribute, box, velocity))
        return states

    def _end_vertex(self, person: Pedestrian) -> int:
        return int(self._graph.ends[person.path, 1 if person.forward else 0])

    def _choose_next(self, person: Pedestrian) -> int:
        """A random path leaving the vertex ahead, other than the one just walked unless it is the only one."""
        options = [p for p in self._graph.incident[self._end_vertex(person)] if p != person.path]
        return int(self._rng.choice(options)) if options else person.path

    def _poses(self, people: list[Pedestrian]) -> tuple[np.ndarray, np.ndarray]:
        """Positions (N, 2) and walking directions (N,) of ``people``."""
        paths = np.array([p.path for p in people], dtype=np.int64)
        forward = np.array([p.forward for p in people])
        lengths = np.array([self._arcs[p.path][-1] for p in people])
        walked = np.clip([p.s for p in people], 0.0, lengths)
        flat_s = self._flat_start[paths] + np.where(forward, walked, lengths - walked)
        positions = np.stack(
            [
                np.interp(flat_s, self._flat_arc, self._flat_points[:, 0]),
                np.interp(flat_s, self._flat_arc, self._flat_points[:, 1]),
            ],
            axis=1,
        )
        segment = np.clip(
            np.searchsorted(self._flat_arc, flat_s, side="right") - 1,
            self._first_vertex[paths],
            self._last_segment[paths],
        )
        headings = self._segment_heading[segment] + np.where(forward, 0.0, np.pi)
        return positions, (headings + np.pi) % (2 * np.pi) - np.pi
