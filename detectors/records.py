"""Plain records returned by the detectors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shapely.geometry import Polygon


@dataclass
class Vessel:
    """One detected vessel.

    Coordinates are in the CRS of the affine transform given to the detector
    (the AOI's UTM grid in the pipeline).

    Attributes
    ----------
    outline : shapely.geometry.Polygon
        Outline of the detected object, in CRS units.
    x, y : float
        Centroid in CRS units.
    length_m, width_m : float
        Sides of the minimum rotated rectangle around the outline.
    heading_deg : float
        Axis orientation of the long side, degrees clockwise from north in
        [0, 180) (an axis, not a direction: bow and stern are not told apart).
    area_m2 : float
        Area of the pixels that make up the object.
    score : float
        Confidence in [0, 1].
    sensor : str
        ``"sentinel-2-l2a"`` or ``"sentinel-1-grd"``.
    at_berth : bool
        Within the berth distance of land or of a berth zone (set by
        :func:`detectors.berth.flag_at_berth`).
    attributes : dict
        Sensor-specific measurements (mean reflectances, peak dB, ...).
    """

    outline: Polygon
    x: float
    y: float
    length_m: float
    width_m: float
    heading_deg: float
    area_m2: float
    score: float
    sensor: str
    at_berth: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class ContainerStack:
    """One detected container stack (a connected patch of containers).

    Attributes
    ----------
    outline : shapely.geometry.Polygon or MultiPolygon
        In CRS units.
    area_m2 : float
        Ground area of the stack.
    teu_estimate, teu_low, teu_high : float
        Twenty-foot-equivalent units, central estimate and range.
    on_vessel : bool
        True when the stack lies on a detected vessel's deck.
    attributes : dict
        Extra measurements (mean brightness, texture, ...).
    """

    outline: Any
    area_m2: float
    teu_estimate: float
    teu_low: float
    teu_high: float
    on_vessel: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)
