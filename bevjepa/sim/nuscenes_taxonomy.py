"""The fixed nuScenes vocabularies: tables, categories (with their nuScenes-lidarseg index), attributes,
visibility.

Names, order and indices are those of nuScenes v1.0, so that category-to-class mappings written for real
nuScenes (detection, tracking, lidarseg colour maps) work unchanged. Descriptions follow the nuScenes
annotator instructions.
"""

# The tables of a nuScenes version folder, as the devkit's ``NuScenes`` loads them.
TABLE_NAMES = (
    "attribute",
    "calibrated_sensor",
    "category",
    "ego_pose",
    "instance",
    "log",
    "map",
    "sample",
    "sample_annotation",
    "sample_data",
    "scene",
    "sensor",
    "visibility",
)

# (name, description) in the order of the ``index`` field of v1.0 ``category.json``.
CATEGORIES: tuple[tuple[str, str], ...] = (
    (
        "noise",
        "Any lidar return that does not correspond to a physical object, such as dust, vapor, noise, fog, "
        "raindrops, smoke and reflections.",
    ),
    ("animal", "All animals, e.g. cats, rats, dogs, deer, birds."),
    ("human.pedestrian.adult", "Adult subcategory."),
    ("human.pedestrian.child", "Child subcategory."),
    ("human.pedestrian.construction_worker", "Construction worker"),
    (
        "human.pedestrian.personal_mobility",
        "A small electric or self-propelled vehicle, e.g. skateboard, segway, or scooters, on which the "
        "person typically travels in a upright position. Driver and (if applicable) rider should be "
        "included in the bounding box along with the vehicle.",
    ),
    ("human.pedestrian.police_officer", "Police officer."),
    ("human.pedestrian.stroller", "Strollers. If a person is in the stroller, include in the annotation."),
    (
        "human.pedestrian.wheelchair",
        "Wheelchairs. If a person is in the wheelchair, include in the annotation.",
    ),
    (
        "movable_object.barrier",
        "Temporary road barrier placed in the scene in order to redirect traffic. Commonly used at "
        "construction sites. This includes concrete barrier, metal barrier and water barrier. No fences.",
    ),
    (
        "movable_object.debris",
        "Movable object that is left on the driveable surface that is too large to be driven over safely, "
        "e.g tree branch, full trash bag etc.",
    ),
    (
        "movable_object.pushable_pullable",
        "Objects that a pedestrian may push or pull. For example dolleys, wheel barrows, garbage-bins, or "
        "shopping carts.",
    ),
    ("movable_object.trafficcone", "All types of traffic cone."),
    (
        "static_object.bicycle_rack",
        "Area or device intended to park or secure the bicycles in a row. It includes all the bikes parked "
        "in it and any empty slots that are intended for parking bikes.",
    ),
    (
        "vehicle.bicycle",
        "Human or electric powered 2-wheeled vehicle designed to travel at lower speeds either on the edge "
        "of road surface, sidewalks or bike paths.",
    ),
    ("vehicle.bus.bendy", "Bendy bus subcategory. Annotate each section of the bendy bus individually."),
    ("vehicle.bus.rigid", "Rigid bus subcategory."),
    (
        "vehicle.car",
        "Vehicle designed primarily for personal use, e.g. sedans, hatch-backs, wagons, vans, mini-vans, "
        "SUVs and jeeps. If the vehicle is designed to carry more than 10 people use vehicle.bus. If it is "
        "primarily designed to haul cargo use vehicle.truck. ",
    ),
    (
        "vehicle.construction",
        "Vehicles primarily designed for construction. Typically very slow moving or stationary. Cranes and "
        "extremities of construction vehicles are only included in annotations if they interfere with "
        "traffic. Trucks used to haul rocks or building materials are considered vehicle.truck rather than "
        "vehicle.construction.",
    ),
    ("vehicle.emergency.ambulance", "All types of ambulances."),
    ("vehicle.emergency.police", "All types of police vehicles including police bicycles and motorcycles."),
    (
        "vehicle.motorcycle",
        "Gasoline or electric powered 2-wheeled vehicle designed to move rapidly (at the speed of standard "
        "cars) on the road surface. This category includes all motorcycles, vespas and scooters.",
    ),
    ("vehicle.trailer", "Any vehicle trailer, both for trucks, cars and bikes."),
    (
        "vehicle.truck",
        "Vehicles primarily designed to haul cargo including pick-ups, lorrys, trucks and semi-tractors. "
        "Trailers hauled after a semi-tractor should be labeled as vehicle.trailer",
    ),
    (
        "flat.driveable_surface",
        "All paved or unpaved surfaces that a car can drive on with no concern of traffic rules.",
    ),
    (
        "flat.other",
        "All other forms of horizontal ground-level structures that do not belong to any of "
        "driveable_surface, curb, sidewalk and terrain. Includes elevated parts of traffic islands, "
        "delimiters, rail tracks, stairs with at most 3 steps and larger bodies of water (lakes, rivers).",
    ),
    (
        "flat.sidewalk",
        "Sidewalk, pedestrian walkways, bike paths, etc. Part of the ground designated for pedestrians or "
        "cyclists. Sidewalks do not have to be next to a road.",
    ),
    (
        "flat.terrain",
        "Natural horizontal surfaces such as ground level horizontal vegetation (< 20 cm tall), grass, "
        "rolling hills, soil, sand and gravel.",
    ),
    (
        "static.manmade",
        "Includes man-made structures but not limited to: buildings, walls, guard rails, fences, poles, "
        "drainages, hydrants, flags, banners, street signs, electric circuit boxes, traffic lights, parking "
        "meters and stairs with more than 3 steps.",
    ),
    (
        "static.other",
        "Points in the background that are not distinguishable. Or objects that do not match any of the "
        "above labels.",
    ),
    (
        "static.vegetation",
        "Any vegetation in the frame that is higher than the ground, including bushes, plants, potted "
        "plants, trees, etc. Only tall grass (> 20cm) is part of this, ground level grass is part of "
        "flat.terrain.",
    ),
    (
        "vehicle.ego",
        "The vehicle on which the cameras, radar and lidar are mounted, that is sometimes visible at the "
        "bottom of the image.",
    ),
)
CATEGORY_NAMES = tuple(name for name, _ in CATEGORIES)

# (name, description) in the order of v1.0 ``attribute.json``.
ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("vehicle.moving", "Vehicle is moving."),
    (
        "vehicle.stopped",
        "Vehicle, with a driver/rider in/on it, is currently stationary but has an intent to move.",
    ),
    (
        "vehicle.parked",
        "Vehicle is stationary (usually for longer duration) with no immediate intent to move.",
    ),
    ("cycle.with_rider", "There is a rider on the bicycle or motorcycle."),
    ("cycle.without_rider", "There is NO rider on the bicycle or motorcycle."),
    ("pedestrian.sitting_lying_down", "The human is sitting or lying down."),
    ("pedestrian.standing", "The human is standing."),
    ("pedestrian.moving", "The human is moving."),
)
ATTRIBUTE_NAMES = tuple(name for name, _ in ATTRIBUTES)

# (token, level, upper bound of the visible fraction); nuScenes itself uses the tokens "1".."4".
VISIBILITY_LEVELS: tuple[tuple[str, str, float], ...] = (
    ("1", "v0-40", 0.4),
    ("2", "v40-60", 0.6),
    ("3", "v60-80", 0.8),
    ("4", "v80-100", 1.0),
)


def visibility_records() -> list[dict]:
    """The four records of ``visibility.json``, with nuScenes' key order and wording."""
    records = []
    lower_percent = 0
    for token, level, upper in VISIBILITY_LEVELS:
        upper_percent = round(upper * 100)
        description = f"visibility of whole object is between {lower_percent} and {upper_percent}%"
        records.append({"description": description, "token": token, "level": level})
        lower_percent = upper_percent
    return records


def visibility_token(visible_fraction: float) -> str:
    """The visibility token of an object of which ``visible_fraction`` (0..1) is visible.

    Bins are closed above, as in the nuScenes annotator instructions (0-40%, 41-60%, 61-80%, 81-100%).

    Args:
        visible_fraction: share of the object that the sensors see; values outside [0, 1] are clipped.

    Returns:
        ``"1"`` to ``"4"``.
    """
    for token, _, upper in VISIBILITY_LEVELS:
        if visible_fraction <= upper:
            return token
    return VISIBILITY_LEVELS[-1][0]
