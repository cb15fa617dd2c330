"""Right of way at intersections: which vehicle may drive which connector.

The first vehicle of each lane asks for the connector it wants once it nears its stop line. Requests are
served first come, first served: a connector is granted when no vehicle holds, and no earlier request waits
for, a connector whose path crosses, merges with or passes too close to it. A vehicle holds its connector
until it has driven off it, so clashing paths through an intersection are never driven at the same time.
"""

import numpy as np

from bevjepa.sim.lane_graph import LaneGraph

# Two cars pass through an intersection at once if their paths stay this far apart; each truck or bus
# sweeps wider in a turn and needs this much more.
_CLEAR_PASSING_M = 3.0
_LONG_VEHICLE_SWING_M = 1.5
LONG_VEHICLE_M = 6.0
# Requests come late enough not to hold an intersection long, early enough to stop firmly if refused.
_FIRM_DECELERATION_MPS2 = 4.0


class IntersectionControl:
    """Grants of connectors to vehicles, identified by integer keys.

    Args:
        lanes: the lane graph (connectors and how close their paths come).
    """

    def __init__(self, lanes: LaneGraph) -> None:
        self._lanes = lanes
        self._holders: dict[int, set[int]] = {}  # connector -> keys of the vehicles allowed on it
        self._lengths: dict[int, float] = {}  # key -> vehicle length, for holders' swing in turns
        self._request_times: dict[int, float] = {}

    def holds(self, key: int, connector: int) -> bool:
        """Whether vehicle ``key`` may drive ``connector``."""
        return key in self._holders.get(connector, ())

    def claim(self, key: int, connector: int, length: float) -> None:
        """Vehicle ``key`` is on ``connector`` (normally already granted; one that could not stop claims it)."""
        self._holders.setdefault(connector, set()).add(key)
        self._lengths[key] = length
        self._request_times.pop(key, None)

    def release(self, key: int, connector: int) -> None:
        """Vehicle ``key`` has driven off ``connector``."""
        self._holders.get(connector, set()).discard(key)

    def release_all_but(self, key: int, keep: set[int]) -> None:
        """Vehicle ``key`` holds nothing besides the connectors in ``keep`` (e.g. after leaving its route)."""
        for connector, holders in self._holders.items():
            if connector not in keep:
                holders.discard(key)

    def admit(self, agents: list[tuple[int, int, float, float, float, list[int]]], now: float) -> None:
        """Grant connectors to the vehicles that need one now.

        Args:
            agents: ``(key, lane, s, speed, length, plan)`` of every vehicle on a lane: ``s`` is its centre's
                arc length on ``lane`` and ``plan`` the lanes it takes next.
            now: the time, for first come, first served.
        """
        first_in_lane: dict[int, tuple[float, int]] = {}
        for key, lane, s, *_ in agents:
            first_in_lane[lane] = max(first_in_lane.get(lane, (-np.inf, key)), (s, key))
        requests = []
        for key, lane, s, speed, length, plan in agents:
            self._lengths[key] = length
            # Only the first vehicle of a lane asks: a queue must not hold the intersection for minutes.
            if first_in_lane[lane][1] != key or self._lanes.is_connector[lane] or not plan:
                continue
            if self.holds(key, plan[0]):
                continue
            distance = float(self._lanes.stop_s[lane]) - (s + length / 2)
            if distance < max(10.0, speed**2 / (2 * _FIRM_DECELERATION_MPS2) + 6.0):
                requests.append((self._request_times.setdefault(key, now), key, plan[0]))

        waiting: list[tuple[int, int]] = []  # (key, connector) of earlier requests still refused
        for _, key, connector in sorted(requests):
            gaps = self._lanes.connector_gaps[connector]
            held = [(k, c) for c, keys in self._holders.items() if c in gaps for k in keys if k != key]
            if any(self._clash(key, connector, k, c) for k, c in held + waiting):
                waiting.append((key, connector))
            else:
                self.claim(key, connector, self._lengths[key])

    def _clash(self, key: int, connector: int, other_key: int, other_connector: int) -> bool:
        """Whether vehicles on these two connectors could touch (crossing, merging or passing too close)."""
        if other_connector == connector:
            return False  # One follows the other.
        gap = self._lanes.connector_gaps[connector].get(other_connector, np.inf)
        long_vehicles = sum(self._lengths.get(k, 0.0) > LONG_VEHICLE_M for k in (key, other_key))
        return gap < _CLEAR_PASSING_M + _LONG_VEHICLE_SWING_M * long_vehicles
