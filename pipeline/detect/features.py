"""Vessel and container-stack features that stand on their own.

Each feature of a detections file carries what an analyst needs once it is
separated from its file (joined with others in geopandas, loaded in QGIS's
temporal controller): ``id``, ``aoi``, ``date``, ``acquired`` (ISO 8601 time
of the scene it was seen on), ``sensor``, ``scene``, ``simulated``, and for
vessels ``lon``/``lat`` of the centroid and a ``score`` with
``score_calibration`` saying what the number is.

``id`` is ``<aoi>-<date>-<kind>-<n>``, ``n`` counting from 1 in the order of
the features' centroids (west to east, then south to north), so the same
detections always get the same ids and an id never depends on the order the
detectors happened to return them in.

The detectors' internals (the classifier's features ``s2_log_area``, ...,
mean reflectances, CFAR statistics) are left out unless ``debug`` is set
(``berthwatch detect --debug-features``, ``make detect DEBUG_FEATURES=1``).
"""

from __future__ import annotations

import numpy as np

from ..core.contracts import S1, S2
from ..core.geojson_io import feature

#: What ``score`` means, per sensor (see README "Outputs"): written beside it.
SCORE_CALIBRATION = {
    S2: "sentinel-2 single-scene classifier probability (boosted trees fitted on sen2ships candidates); "
        "its measured reliability per score bin is in the report (section 10, from berthwatch validate "
        "sen2ships); in time-series mode the physical rules decide and this only ranks",
    S1: "sentinel-1 logistic of the peak signal-to-clutter ratio, 0.5 at 10 dB; a ranking, "
        "not a calibrated probability (OpenSARShip labels only AIS ships, so precision is unmeasured)",
}
SENSOR_PREFIX = {S2: "s2_", S1: "s1_"}
#: Vessel attributes of the detectors that are always written (the rest only with debug).
_PUBLIC_VESSEL_ATTRS = ("distance_to_land_m",)


def _prefixed(prefix: str, attrs: dict) -> dict:
    out = {}
    for k, v in attrs.items():
        if k in ("sensors", "merged_from", "scene", "distance_to_land_m"):
            continue
        if isinstance(v, (list, tuple)):
            v = ",".join(str(x) for x in v)
        out[f"{prefix}{k}"] = v
    return out


def _spatial_order(points: list[tuple[float, float]]) -> list[int]:
    """Indices sorted west to east, then south to north (rounded to 1 m so noise cannot flip a tie)."""
    return sorted(range(len(points)), key=lambda i: (round(points[i][0]), round(points[i][1]), i))


def _acquired(scene_ids, acquired: dict) -> str | None:
    times = sorted(t for s in scene_ids if (t := acquired.get(s)))
    return times[0] if times else None


def vessel_features(vessels, scenes: dict, transform, project, common: dict, acquired: dict,
                    debug: bool = False) -> list[dict]:
    """GeoJSON features of the date's vessels (lon/lat), in :func:`_spatial_order`."""
    out = []
    order = _spatial_order([(v.x, v.y) for v in vessels])
    for n, i in enumerate(order, 1):
        v = vessels[i]
        scene = v.attributes.get("scene")
        outline = project(v.outline)
        centre = outline.centroid
        props = {"kind": "vessel", "id": f"{common['aoi']}-{common['date']}-vessel-{n}", **common,
                 "acquired": acquired.get(scene), "sensor": v.sensor, "scene": scene,
                 "sensors": list(v.attributes.get("sensors", [v.sensor])),
                 "lon": round(centre.x, 6), "lat": round(centre.y, 6),
                 "length_m": v.length_m, "width_m": v.width_m, "heading_deg": v.heading_deg,
                 "area_m2": v.area_m2, "score": v.score, "score_calibration": SCORE_CALIBRATION.get(v.sensor),
                 "at_berth": v.at_berth}
        props.update({k: v.attributes.get(k) for k in _PUBLIC_VESSEL_ATTRS})
        other = v.attributes.get("merged_from")
        if other:
            props.update(matched_sensor=other["sensor"], matched_length_m=other["length_m"],
                         matched_offset_m=float(np.hypot(other["x"] - v.x, other["y"] - v.y)),
                         matched_scene=scenes[other["sensor"]].scene_at(other["x"], other["y"], transform)
                         if other["sensor"] in scenes else None)
        if debug:
            props.update(_prefixed(SENSOR_PREFIX.get(v.sensor, ""), v.attributes))
        out.append(feature(outline, props))
    return out


def stack_features(stacks, scene_ids: list[str], project, common: dict, acquired: dict,
                   debug: bool = False) -> list[dict]:
    """GeoJSON features of the date's container stacks (Sentinel-2), in :func:`_spatial_order`."""
    out = []
    centres = [st.outline.centroid for st in stacks]
    for n, i in enumerate(_spatial_order([(c.x, c.y) for c in centres]), 1):
        st = stacks[i]
        props = {"kind": "container_stack", "id": f"{common['aoi']}-{common['date']}-stack-{n}", **common,
                 "acquired": _acquired(scene_ids, acquired), "sensor": S2,
                 "scene": scene_ids[0] if len(scene_ids) == 1 else ",".join(scene_ids),
                 "area_m2": st.area_m2, "teu_estimate": st.teu_estimate, "teu_low": st.teu_low,
                 "teu_high": st.teu_high, "on_vessel": st.on_vessel}
        if debug:
            props.update(st.attributes)
        out.append(feature(project(st.outline), props))
    return out
