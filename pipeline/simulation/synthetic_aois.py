"""SIMULATED AOIs: square GeoJSON AOIs of a given size, for the scale benchmark and tests.

Real AOIs are drawn by hand around a port (``aois/``); to measure how the
cost grows with the number and size of AOIs, squares of ``side_km`` are laid
out along a coast, each a valid AOI file (:func:`..core.aoi.load_aoi`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..core.atomic import write_text_atomic


def write_square_aoi(path: Path, aoi_id: str, lon: float, lat: float, side_km: float) -> Path:
    """Write a square AOI of ``side_km`` centred on ``lon``, ``lat`` (WGS84); return its path."""
    dlat = side_km / 2 / 111.32
    dlon = side_km / 2 / (111.32 * math.cos(math.radians(lat)))
    ring = [[lon - dlon, lat - dlat], [lon + dlon, lat - dlat], [lon + dlon, lat + dlat],
            [lon - dlon, lat + dlat], [lon - dlon, lat - dlat]]
    fc = {"type": "FeatureCollection", "features": [{
        "type": "Feature",
        "properties": {"id": aoi_id, "name": f"SIMULATED port {aoi_id}", "country": "XX", "role": "other",
                       "notes": f"SIMULATED {side_km:g} km square for benchmarks and tests; not a real port."},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }]}
    write_text_atomic(path, json.dumps(fc, indent=1) + "\n")
    return Path(path)


def write_ports(folder: Path, n: int, side_km: float, *, lon0: float = 131.0, lat0: float = 42.0) -> list[Path]:
    """``n`` square AOIs ``port01``.. along a meridian, ``side_km`` apart (all in one UTM zone)."""
    step = side_km * 1.5 / 111.32
    return [write_square_aoi(Path(folder) / f"port{i + 1:02d}.geojson", f"port{i + 1:02d}", lon0,
                             lat0 + i * step, side_km) for i in range(n)]
