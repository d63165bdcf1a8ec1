"""Detections of one AOI and date: every detector on the date's images, as GeoJSON features."""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from rasterio import features as rio_features

from ...detectors import berth as det_berth
from ...detectors import optical as det_optical
from ...detectors import sar as det_sar
from ...detectors import stacks as det_stacks
from ..core.aoi import AOI, Grid
from ..core.contracts import LARGE_VESSEL_M, S1, S2, TileRef, polarisation_bands, polarisation_label
from ..core import observed
from ..core.geojson_io import feature, to_lonlat
from ..core.observed import zone_fraction
from ..core.manifest import params_hash
from .features import stack_features as stack_features_of
from .features import vessel_features as vessel_features_of
from .params import DETECTOR_VERSION
from .s2_reference import REFLECTANCE as S2_REFLECTANCE
from .s2_reference import normalised_stack_bands, scl_codes, unchanged_since_median
from .scenes import load_tile, mosaic, optical_sea_domain, optical_water
from .water_reference import Reference


@dataclass
class AoiContext:
    aoi: AOI
    grid: Grid
    aoi_mask: np.ndarray
    berth_zones: list
    to_lonlat: object
    reference: Reference
    zone_masks: dict  # "berth"/"yard" -> mask of the AOI file's zones, when it draws them


def aoi_context(aoi: AOI, reference: Reference) -> AoiContext:
    grid = aoi.grid()
    geom_utm = aoi.to_crs(aoi.geometry, grid.crs)
    aoi_mask = rio_features.geometry_mask([geom_utm], (grid.height, grid.width), grid.transform, invert=True)
    zones = [aoi.to_crs(z.geometry, grid.crs) for z in aoi.zones_of("berth")]
    zone_masks = {}
    for kind in ("berth", "yard"):
        geoms = [aoi.to_crs(z.geometry, grid.crs) for z in aoi.zones_of(kind)]
        if geoms:
            zone_masks[kind] = rio_features.geometry_mask(geoms, (grid.height, grid.width), grid.transform,
                                                          invert=True) & aoi_mask
    return AoiContext(aoi, grid, aoi_mask, zones, to_lonlat(grid.crs), reference, zone_masks)


def _fraction(mask: np.ndarray, within: np.ndarray) -> float:
    n = int(within.sum())
    return float((mask & within).sum() / n) if n else 0.0


class StepClock:
    """Accumulates wall time per step into a dict (for the benchmark)."""

    def __init__(self, timings: dict | None):
        self.timings = timings
        self._step, self._t0 = None, 0.0

    def __call__(self, step: str) -> "StepClock":
        self._step = step
        return self

    def __enter__(self):
        self._t0 = time.perf_counter()

    def __exit__(self, *exc):
        if self.timings is not None:
            self.timings[self._step] = self.timings.get(self._step, 0.0) + time.perf_counter() - self._t0


def observed_zones(ctx: AoiContext, water: np.ndarray, land: np.ndarray) -> dict[str, np.ndarray | None]:
    """The masks whose clear share decides whether a date is usable (:mod:`..core.observed`)."""
    berths = ctx.zone_masks.get("berth")
    if berths is None:
        berths = observed.berth_band(water, land, ctx.grid.resolution) & ctx.aoi_mask
    yards = ctx.zone_masks.get("yard")
    if yards is None and ctx.reference.optical is not None and ctx.reference.optical.yards.any():
        yards = ctx.reference.optical.yards & ctx.aoi_mask
    return {"aoi": ctx.aoi_mask, "berths": berths if berths.any() else None, "yards": yards}


def detect_aoi_date(ctx: AoiContext, date: dt.date, tiles: list[TileRef], params: dict,
                    timings: dict | None = None, debug_features: bool = False) -> list[dict]:
    """Detections of one AOI and date as GeoJSON features (summary first).

    ``timings``, when given, receives the seconds spent per step; ``debug_features``
    keeps the detectors' internals in the features (:mod:`.features`).
    """
    clock = StepClock(timings)
    grid, tr = ctx.grid, ctx.grid.transform
    px = grid.resolution
    loaded: dict[str, list] = defaultdict(list)
    with clock("read"):
        for t in tiles:
            bands, item = load_tile(t, grid)
            loaded[t.sensor].append((t.scene_id, bands, item))
        scenes = {s: mosaic(s, loaded[s], ctx.aoi_mask) for s in (S2, S1) if loaded.get(s)}
    ref = ctx.reference

    # Sea domain and land: the reference, or in single-scene mode this date's own water.
    if ref.water is not None:
        domain, land = ref.water, ~ref.water & ref.observed
    else:
        with clock("single_scene_water"):
            domain = np.zeros((grid.height, grid.width), bool)
            seen = np.zeros_like(domain)
            if S2 in scenes:
                b = scenes[S2].bands
                w2, v2 = optical_water(b, params["optical"])
                domain |= optical_sea_domain(w2, params["optical"], px) & v2
                seen |= v2
            if S1 in scenes:
                s = scenes[S1]
                co, cross = polarisation_bands(s.bands)
                w1 = det_sar.water_mask_sar(s.bands[co], s.bands.get(cross), pixel_size=px, **params["water_sar"])
                domain |= w1 & s.clear & ~seen
                seen |= s.clear
            land = ~domain & seen

    vessels_by_sensor: dict[str, list] = {}
    stacks, stack_stats, normalisation = [], None, None
    if S2 in scenes:
        s = scenes[S2]
        b = s.bands
        scl = scl_codes(b["SCL"])
        reflectance = {k: b[k] for k in S2_REFLECTANCE}
        with clock("s2_vessels"):
            v2 = det_optical.detect_vessels_optical(reflectance, tr, scl=scl, reference_water=ref.water,
                                                    pixel_size=px, **params["optical"])
        with clock("s2_stacks"):
            optical = ref.optical
            stack_bands, normalisation = normalised_stack_bands(
                reflectance, s.clear & land, optical.median if optical else None, params)
            unchanged = None
            if normalisation["applied"]:
                unchanged = unchanged_since_median(stack_bands, s.clear & land, optical.median, params)
                normalisation["unchanged_fraction"] = round(float(unchanged[land].mean()), 4) if land.any() else 0.0
            stacks, stack_stats = det_stacks.detect_container_stacks(
                stack_bands, tr, scl=scl, water=domain, vessels=v2, pixel_size=px,
                yard_prior=optical.yards if optical else None,
                reference_stacks=optical.stacks if unchanged is not None else None, unchanged=unchanged,
                **params["stacks"])
        vessels_by_sensor[S2] = v2
    if S1 in scenes:
        s = scenes[S1]
        with clock("s1_vessels"):
            co, cross = polarisation_bands(s.bands)
            v1 = det_sar.detect_vessels_sar(s.bands[co], s.bands.get(cross), tr, pixel_size=px, land_mask=~domain,
                                            **params["sar"])
        vessels_by_sensor[S1] = v1
    for sensor, vs in vessels_by_sensor.items():
        for v in vs:
            v.attributes["scene"] = scenes[sensor].scene_at(v.x, v.y, tr)
    with clock("merge_berth"):
        # Merged first so that the berth distance transform runs once per date;
        # a merged vessel keeps the Sentinel-2 outline, the sharper one.
        vessels = det_berth.merge_sensor_duplicates(vessels_by_sensor.get(S2, []), vessels_by_sensor.get(S1, []),
                                                    **params["merge"])
        vessels = det_berth.flag_at_berth(vessels, land, tr, berth_zones=ctx.berth_zones, **params["berth"])

    items = [it for s in scenes.values() for it in s.items]
    acquired = {it.get("id"): it.get("properties", {}).get("datetime") for it in items}
    simulated = any(bool(it.get("properties", {}).get("berthwatch:simulated", False)) for it in items)
    common = {"aoi": ctx.aoi.id, "date": date.isoformat(), "simulated": simulated}
    vessel_features = vessel_features_of(vessels, scenes, tr, ctx.to_lonlat, common, acquired, debug_features)
    stack_features = stack_features_of(stacks, scenes[S2].scene_ids if S2 in scenes else [], ctx.to_lonlat,
                                       common, acquired, debug_features)
    zones = observed_zones(ctx, domain, land)
    summary = {
        "kind": "aoi_summary",
        "aoi": ctx.aoi.id,
        "aoi_name": ctx.aoi.name,
        "role": ctx.aoi.role,
        "date": date.isoformat(),
        "sensors": list(scenes),
        "scenes": [sid for s in scenes.values() for sid in s.scene_ids],
        "acquired": acquired,
        "clear_fraction": {sensor: _fraction(s.clear, ctx.aoi_mask) for sensor, s in scenes.items()},
        # Clear share of the AOI, its berths and its yards per sensor (pipeline.core.observed).
        "observed_fraction": {sensor: {z: zone_fraction(s.clear, m) for z, m in zones.items()}
                              for sensor, s in scenes.items()},
        "vessels": len(vessels),
        "vessels_at_berth": sum(v.at_berth for v in vessels),
        "large_vessels": sum(v.length_m >= LARGE_VESSEL_M for v in vessels),
        "vessels_by_sensor": {s: len(v) for s, v in vessels_by_sensor.items()},
        "vessels_seen_by_both": sum(len(v.attributes.get("sensors", [])) > 1 for v in vessels),
        "container_stack_area_m2": stack_stats["stack_area_m2"] if stack_stats else None,
        "container_stack_area_on_vessels_m2": sum(s.area_m2 for s in stacks if s.on_vessel) if stack_stats else None,
        "teu_estimate": stack_stats["teu_estimate"] if stack_stats else None,
        "teu_low": stack_stats["teu_low"] if stack_stats else None,
        "teu_high": stack_stats["teu_high"] if stack_stats else None,
        "stack_observed_fraction": stack_stats["observed_fraction"] if stack_stats else None,
        # Sentinel-2 as the stack detector saw it: ~ gain * median + offset per band, undone.
        "s2_normalisation": normalisation if stack_stats else None,
        "water_reference": "time-series" if ref.water is not None else "single-scene",
        "reference_dates": ref.n_dates,
        "simulated": simulated,
        "detector_version": DETECTOR_VERSION,
        "params_hash": params_hash(params),
        # Which Sentinel-1 channels the detectors had: VV+VH, VV, HH+HV or HH (null without S1).
        "s1_polarisations": polarisation_label(scenes[S1].bands) if S1 in scenes else None,
    }
    summary["usable"] = observed.usable(summary)
    return [feature(ctx.aoi.geometry, summary)] + vessel_features + stack_features
