"""Areas of interest: loading, validation and the 10 m UTM grid of each AOI.

An AOI is an RFC 7946 GeoJSON FeatureCollection whose first feature is the AOI
polygon (properties ``id``, ``name``, ``country``, ``role``, ``notes``). Further
features with a ``zone`` property (``berth``, ``yard``, ``anchorage``) refine
counting where known; nothing requires them.
"""

from __future__ import annotations

import json
import math

import shapely
import re
from dataclasses import dataclass, field
from pathlib import Path

from affine import Affine
from pyproj import CRS, Transformer
from shapely.geometry import MultiPolygon, Polygon, box, mapping, shape
from shapely.geometry.polygon import orient
from shapely.validation import explain_validity

from .errors import UsageError, UserError
from .shipped import shipped_dir

ROLES = ("origin", "destination", "other")
ZONES = ("berth", "yard", "anchorage")
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
MAX_SIDE_M = 50_000.0
#: Sentinel Hub Process API limit on output width/height in pixels.
MAX_REQUEST_PX = 2500
RESOLUTION_M = 10.0


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: CRS, affine transform and size in pixels."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        left, top = self.transform.c, self.transform.f
        return (left, top + self.transform.e * self.height, left + self.transform.a * self.width, top)

    @property
    def resolution(self) -> float:
        return self.transform.a

    def window_grid(self, row_off: int, col_off: int, height: int, width: int) -> "Grid":
        return Grid(self.crs, self.transform @ Affine.translation(col_off, row_off), width, height)

    def split(self, max_px: int = MAX_REQUEST_PX) -> list[tuple[int, int, "Grid"]]:
        """Sub-grids no larger than ``max_px`` a side, as ``(row_off, col_off, grid)``."""
        parts = []
        for r in range(0, self.height, max_px):
            for c in range(0, self.width, max_px):
                h, w = min(max_px, self.height - r), min(max_px, self.width - c)
                parts.append((r, c, self.window_grid(r, c, h, w)))
        return parts


@dataclass(frozen=True)
class Zone:
    zone: str
    geometry: Polygon | MultiPolygon  # WGS84 lon/lat
    properties: dict = field(default_factory=dict)


@dataclass(frozen=True)
class AOI:
    id: str
    name: str
    country: str
    role: str
    notes: str
    geometry: Polygon | MultiPolygon  # WGS84 lon/lat
    zones: tuple[Zone, ...] = ()
    path: Path | None = None

    @property
    def utm_crs(self) -> CRS:
        """UTM zone of the AOI centroid (WGS84 / UTM, EPSG 326xx north, 327xx south)."""
        c = self.geometry.centroid
        zone = int(math.floor((c.x + 180.0) / 6.0)) % 60 + 1
        return CRS.from_epsg((32600 if c.y >= 0 else 32700) + zone)

    def to_crs(self, geom, crs: CRS):
        """Reproject a lon/lat geometry (the AOI's or a zone's) to ``crs``."""
        return reproject_geometry(geom, CRS.from_epsg(4326), crs)

    def grid(self, resolution: float = RESOLUTION_M) -> Grid:
        """The AOI's grid: its UTM bounding box snapped outward to ``resolution``."""
        crs = self.utm_crs
        minx, miny, maxx, maxy = self.to_crs(self.geometry, crs).bounds
        left = math.floor(minx / resolution) * resolution
        bottom = math.floor(miny / resolution) * resolution
        right = math.ceil(maxx / resolution) * resolution
        top = math.ceil(maxy / resolution) * resolution
        width = int(round((right - left) / resolution))
        height = int(round((top - bottom) / resolution))
        return Grid(crs, Affine(resolution, 0.0, left, 0.0, -resolution, top), width, height)

    def zones_of(self, kind: str) -> list[Zone]:
        return [z for z in self.zones if z.zone == kind]

    def describe(self) -> dict:
        g = self.grid()
        minx, miny, maxx, maxy = self.geometry.bounds
        return {
            "id": self.id,
            "name": self.name,
            "country": self.country,
            "role": self.role,
            "bounds_lonlat": [round(v, 6) for v in (minx, miny, maxx, maxy)],
            "utm_epsg": g.crs.to_epsg(),
            "grid_px": [g.width, g.height],
            "request_tiles": len(g.split()),
            "zones": {k: len(self.zones_of(k)) for k in ZONES if self.zones_of(k)},
            "notes": self.notes,
            "path": str(self.path) if self.path else None,
        }


def _fail(path: Path, problem: str) -> UserError:
    return UserError(f"{path}: {problem}")


def _check_lonlat(path: Path, geom) -> None:
    minx, miny, maxx, maxy = geom.bounds
    if not (-90 <= miny <= 90 and -90 <= maxy <= 90):
        if -90 <= minx <= 90 and -90 <= maxx <= 90:
            raise _fail(path, "latitude out of range: coordinates look like lat/lon, GeoJSON wants lon/lat")
        raise _fail(path, "latitude out of range [-90, 90]")
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180):
        raise _fail(path, "longitude out of range [-180, 180]")


def _polygon(path: Path, feature: dict, what: str):
    geom_json = feature.get("geometry")
    if not isinstance(geom_json, dict) or geom_json.get("type") not in ("Polygon", "MultiPolygon"):
        got = geom_json.get("type") if isinstance(geom_json, dict) else geom_json
        raise _fail(path, f"{what} must be a Polygon or MultiPolygon, got {got}")
    try:
        geom = shape(geom_json)
    except Exception as exc:
        raise _fail(path, f"{what} has malformed coordinates ({exc})") from None
    if geom.is_empty:
        raise _fail(path, f"{what} is empty")
    _check_lonlat(path, geom)
    if not geom.is_valid:
        raise _fail(path, f"{what} is not a valid polygon ({explain_validity(geom)})")
    return geom


def load_aoi(path: Path | str) -> AOI:
    """Load and validate one AOI GeoJSON file.

    Raises
    ------
    UserError
        One line naming the file and the problem.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _fail(path, "no such AOI file") from None
    except IsADirectoryError:
        raise _fail(path, "is a folder, expected an AOI GeoJSON file") from None
    except OSError as exc:
        raise _fail(path, f"cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise _fail(path, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise _fail(path, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise _fail(path, "must be a GeoJSON FeatureCollection")
    feats = data.get("features")
    if not isinstance(feats, list) or not feats:
        raise _fail(path, "FeatureCollection has no features; the first must be the AOI polygon")
    for i, feat in enumerate(feats, start=1):
        if not isinstance(feat, dict) or not isinstance(feat.get("properties") or {}, dict):
            raise _fail(path, f"feature {i} must be a GeoJSON Feature object with a properties object")
    first = feats[0]
    props = first.get("properties") or {}
    missing = [k for k in ("id", "name", "country", "role", "notes") if not props.get(k)]
    if missing:
        raise _fail(path, f"first feature lacks properties: {', '.join(missing)}")
    aoi_id = str(props["id"])
    if not ID_PATTERN.match(aoi_id):
        raise _fail(path, f"id {aoi_id!r} must be lower-case letters, digits, '-' or '_'")
    if props["role"] not in ROLES:
        raise _fail(path, f"role {props['role']!r} must be one of {', '.join(ROLES)}")
    geom = _polygon(path, first, "AOI geometry")
    if geom.bounds[2] - geom.bounds[0] > 180.0:
        raise _fail(path, "AOI geometry crosses the 180th meridian (it spans more than 180 degrees of "
                          "longitude); an AOI must lie within one UTM zone's reach: split it at 180 degrees")
    zones = []
    for i, feat in enumerate(feats[1:], start=2):
        zprops = feat.get("properties") or {}
        kind = zprops.get("zone")
        if kind not in ZONES:
            raise _fail(path, f"feature {i} needs property zone in {', '.join(ZONES)}, got {kind!r}")
        zones.append(Zone(kind, _polygon(path, feat, f"feature {i} ({kind})"), dict(zprops)))
    aoi = AOI(aoi_id, str(props["name"]), str(props["country"]), str(props["role"]), str(props["notes"]),
              geom, tuple(zones), path)
    minx, miny, maxx, maxy = aoi.to_crs(geom, aoi.utm_crs).bounds
    side = max(maxx - minx, maxy - miny)
    if side > MAX_SIDE_M:
        raise _fail(path, f"extent {side / 1000:.1f} km a side exceeds the {MAX_SIDE_M / 1000:.0f} km limit")
    if side < 5 * RESOLUTION_M:
        raise _fail(path, f"extent {side:.0f} m a side is too small for 10 m imagery")
    for z in zones:
        if not z.geometry.intersects(geom):
            raise _fail(path, f"{z.zone} zone lies outside the AOI polygon")
    return aoi


def builtin_aoi_dir() -> Path:
    return shipped_dir("berthwatch.aois")


def available_aois(extra_dirs: list[Path] | None = None) -> dict[str, AOI]:
    """All AOIs in the shipped folder plus ``extra_dirs``, by id."""
    aois: dict[str, AOI] = {}
    for d in [builtin_aoi_dir(), *(extra_dirs or [])]:
        for f in sorted(Path(d).glob("*.geojson")):
            aoi = load_aoi(f)
            if aoi.id in aois and aois[aoi.id].path != f:
                raise UserError(f"{f}: AOI id {aoi.id!r} already defined in {aois[aoi.id].path}")
            aois[aoi.id] = aoi
    return aois


def resolve_aois(specs: list[str] | None, extra_dirs: list[Path] | None = None) -> list[AOI]:
    """AOIs named on the command line: ids, comma lists, or paths to GeoJSON files.

    ``None`` or an empty list means every available AOI.
    """
    known = available_aois(extra_dirs)
    if not specs:
        return list(known.values())
    out: list[AOI] = []
    for spec in specs:
        for item in filter(None, (s.strip() for s in spec.split(","))):
            if item.endswith((".geojson", ".json")) or "/" in item:
                aoi = load_aoi(Path(item))
            elif item in known:
                aoi = known[item]
            else:
                raise UsageError(f"--aoi: unknown AOI {item!r}; known: {', '.join(sorted(known)) or 'none'}")
            if aoi.id not in {a.id for a in out}:
                out.append(aoi)
    return out


def aoi_feature_collection(aoi: AOI) -> dict:
    """The AOI as RFC 7946 GeoJSON (counter-clockwise exteriors)."""
    def ccw(g):
        if isinstance(g, Polygon):
            return orient(g, 1.0)
        return MultiPolygon([orient(p, 1.0) for p in g.geoms])

    feats = [{"type": "Feature", "properties": {"id": aoi.id, "name": aoi.name, "country": aoi.country,
                                                "role": aoi.role, "notes": aoi.notes},
              "geometry": mapping(ccw(aoi.geometry))}]
    feats += [{"type": "Feature", "properties": z.properties, "geometry": mapping(ccw(z.geometry))} for z in aoi.zones]
    return {"type": "FeatureCollection", "features": feats}


def grid_footprint_lonlat(grid: Grid) -> Polygon:
    """The grid's bounding box in WGS84 lon/lat (densified so UTM curvature is kept)."""
    poly = box(*grid.bounds).segmentize(grid.resolution * 50)
    return orient(reproject_geometry(poly, grid.crs, CRS.from_epsg(4326)), 1.0)


def reproject_geometry(geom, src: CRS, dst: CRS):
    """Reproject a shapely geometry between CRSs (x/y = lon/lat order for geographic CRSs)."""
    tr = Transformer.from_crs(src, dst, always_xy=True)
    return shapely.transform(geom, lambda x, y: tr.transform(x, y), interleaved=False)
