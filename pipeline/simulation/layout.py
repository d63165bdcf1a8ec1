"""Synthetic port layouts for the SIMULATED sample: coast, piers, berths, yards.

A layout is drawn in a *coast frame*: ``s`` metres along a straight quay line
and ``t`` metres seaward of it (``t < 0`` is land), anchored at a lon/lat
point and rotated by the azimuth of the sea side. Piers stick out seaward
from the quay; every pier has two berth faces (``<pier>a`` on the side of
smaller ``s``, ``<pier>b`` on the other). Container yards are rectangles
behind the quay, filled strip by strip.

None of this is digitised from imagery: no source gives pier outlines for
Rajin or Dunai (fact sheet, section 3a). The layouts only put plausible
structures inside the real AOI extents; at Rajin, pier 2's ``b`` face is
anchored at the only source-backed berth position (Angara, 42.2271 N,
130.2826 E, MSMT 2024) and pier 1 is the northernmost, as VOA describes it.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from pyproj import Transformer
from shapely.geometry import Polygon
from shapely.ops import unary_union

from ..core.aoi import AOI, Grid

# ------------------------------------------------------------------ surface classes
WATER, FOREST, GRASS, SOIL, CONCRETE, ASPHALT, ROOF_RED, ROOF_GREY, ROOF_BLUE, RAIL = range(10)
CLASS_NAMES = ("water", "forest", "grass", "soil", "concrete", "asphalt", "roof_red", "roof_grey", "roof_blue",
               "rail")
N_CLASSES = len(CLASS_NAMES)

#: Sub-pixels per 10 m pixel side when ships and stacks are drawn (2.5 m).
OVERSAMPLE = 4
#: Land, town and port surfaces are larger than 5 m: their static scene is drawn at 5 m.
STATIC_OVERSAMPLE = 2

#: Yard geometry shared with detectors/stacks.py estimate_teu defaults: a TEU
#: ground slot (2.5 m x 6.25 m) in blocks of 6 rows x 8 slots, 5 m aisles
#: between row groups and 10 m lanes between blocks, i.e. 25 m2 of yard per
#: slot (DEFAULT_SLOT_AREA_M2); 85 % of slots occupied (DEFAULT_PACKING) and
#: 2.5 tiers on average (DEFAULT_STACK_HEIGHT[0]). Hence a stack holding N TEU
#: covers N * 25 / (0.85 * 2.5) = 11.76 m2 per TEU.
SLOT_W_M, SLOT_L_M = 2.5, 6.25
ROWS_PER_BLOCK, SLOTS_PER_BLOCK = 6, 8
AISLE_M, LANE_M = 5.0, 10.0
BLOCK_T_M = ROWS_PER_BLOCK * SLOT_W_M + AISLE_M       # 20 m
BLOCK_S_M = SLOTS_PER_BLOCK * SLOT_L_M + LANE_M       # 60 m
SLOT_AREA_M2 = BLOCK_T_M * BLOCK_S_M / (ROWS_PER_BLOCK * SLOTS_PER_BLOCK)  # 25
PACKING = 0.85
MEAN_TIERS = 2.5
M2_PER_TEU = SLOT_AREA_M2 / (PACKING * MEAN_TIERS)
STRIP_DEPTH_M = 4 * BLOCK_T_M                         # yards fill in 80 m deep strips


@dataclass(frozen=True)
class Berth:
    id: str            # e.g. "pier-1a"
    group: str         # e.g. "pier-1"
    s: float           # face position along the quay (ship side outward)
    side: int          # -1: ship lies at smaller s than the face, +1: larger
    t0: float          # seaward range of the face
    t1: float

    @property
    def max_length_m(self) -> float:
        return self.t1 - self.t0 - 10.0


@dataclass(frozen=True)
class Yard:
    name: str
    s0: float
    s1: float
    t_front: float     # seaward edge (negative: inland of the quay line)
    depth: float
    baseline_teu: float

    @property
    def capacity_teu(self) -> float:
        return (self.s1 - self.s0) * self.depth / M2_PER_TEU

    def filled_rects(self, teu: float) -> list[tuple[float, float, float, float]]:
        """(s0, s1, t0, t1) rectangles covered by a stack of ``teu``, strip by strip."""
        area = max(teu, 0.0) * M2_PER_TEU
        length = self.s1 - self.s0
        rects, k = [], 0
        while area > 1e-6 and k * STRIP_DEPTH_M < self.depth:
            depth = min(STRIP_DEPTH_M, self.depth - k * STRIP_DEPTH_M)
            ls = min(length, area / depth)
            t1 = self.t_front - k * STRIP_DEPTH_M
            rects.append((self.s0, self.s0 + ls, t1 - depth, t1))
            area -= ls * depth
            k += 1
        return rects


@dataclass(frozen=True)
class Rect:
    """Axis-aligned rectangle in the coast frame with a surface class."""

    s0: float
    s1: float
    t0: float
    t1: float
    cls: int


@dataclass(eq=False)
class Layout:
    aoi: str
    grid: Grid
    origin: tuple[float, float]          # UTM x, y of s = t = 0
    sea_azimuth_deg: float
    port_span: tuple[float, float]
    piers: list[tuple[str, float, float, float]]   # name, s centre, length, width
    yards: list[Yard]
    features: list[Rect]                  # warehouses, roads, rail, apron ...
    town: tuple[float, float, float, float]
    anchorage: tuple[float, float, float, float]
    moorings: list[tuple[float, float]]   # s ranges along the quay for small craft
    breakwaters: list[Rect] = field(default_factory=list)
    _classes: dict = field(default_factory=dict, repr=False)

    # -- frame
    @property
    def n(self) -> np.ndarray:
        az = math.radians(self.sea_azimuth_deg)
        return np.array([math.sin(az), math.cos(az)])

    @property
    def a(self) -> np.ndarray:
        az = math.radians(self.sea_azimuth_deg - 90.0)
        return np.array([math.sin(az), math.cos(az)])

    def to_xy(self, s, t):
        s, t = np.asarray(s, float), np.asarray(t, float)
        a, n = self.a, self.n
        return self.origin[0] + s * a[0] + t * n[0], self.origin[1] + s * a[1] + t * n[1]

    def to_st(self, x, y):
        dx, dy = np.asarray(x) - self.origin[0], np.asarray(y) - self.origin[1]
        a, n = self.a, self.n
        return dx * a[0] + dy * a[1], dx * n[0] + dy * n[1]

    def rect_polygon(self, s0, s1, t0, t1) -> Polygon:
        xs, ys = self.to_xy([s0, s1, s1, s0], [t0, t0, t1, t1])
        return Polygon(list(zip(xs, ys)))

    # -- names
    def berths(self) -> list[Berth]:
        out = []
        for name, sc, length, width in self.piers:
            out.append(Berth(f"{name}a", name, sc - width / 2, -1, 0.0, length))
            out.append(Berth(f"{name}b", name, sc + width / 2, +1, 0.0, length))
        return out

    def berth_groups(self) -> list[str]:
        names = [p[0] for p in self.piers]
        return names + [b.id for b in self.berths()]

    def yard_names(self) -> list[str]:
        return [y.name for y in self.yards]

    def yard(self, name: str | None) -> Yard:
        if name is None:
            return self.yards[0]
        return next(y for y in self.yards if y.name == name)

    def stack_polygon(self, yard: Yard, teu: float):
        rects = yard.filled_rects(teu)
        if not rects:
            return None
        return unary_union([self.rect_polygon(*r) for r in rects])

    # -- raster of surface classes
    def hires_coords(self, oversample: int) -> tuple[np.ndarray, np.ndarray, float]:
        g = self.grid
        res = g.resolution / oversample
        cols = g.transform.c + (np.arange(g.width * oversample) + 0.5) * res
        rows = g.transform.f - (np.arange(g.height * oversample) + 0.5) * res
        x, y = np.meshgrid(cols.astype(np.float64), rows.astype(np.float64))
        s, t = self.to_st(x, y)
        return s.astype(np.float32), t.astype(np.float32), res

    def render_classes(self, oversample: int, seed: int) -> np.ndarray:
        """Surface class of every sub-pixel at ``resolution / oversample`` (cached, read-only)."""
        key = (oversample, seed)
        if key not in self._classes:
            self._classes[key] = self._render_classes(oversample, seed)
            self._classes[key].flags.writeable = False
        return self._classes[key]

    def _render_classes(self, oversample: int, seed: int) -> np.ndarray:
        s, t, res = self.hires_coords(oversample)
        rng = np.random.default_rng(seed)
        h, w = s.shape
        coast = np.zeros_like(t)
        # Natural coast outside the port: a wandering shoreline (noise along s,
        # hundreds of metres) tapering to the straight quay inside the port span.
        noise = smooth_noise(rng, (h, w), 40.0 / res * 4) * 120.0 + smooth_noise(rng, (h, w), 8.0 / res * 4) * 15.0
        s0, s1 = self.port_span
        taper = np.clip(np.maximum(s0 - s, s - s1) / 150.0, 0.0, 1.0)
        coast = noise * taper
        land = t < coast
        cls = np.full((h, w), WATER, dtype=np.uint8)
        veg = smooth_noise(rng, (h, w), 30.0 / res * 4)
        cls[land] = np.where(veg[land] > -0.2, FOREST, GRASS)
        soil = smooth_noise(rng, (h, w), 12.0 / res * 4) > 1.1
        cls[land & soil] = SOIL

        # Town: apartment blocks (mostly flat grey roofs, some pitched red or
        # blue ones) between streets, with trees and lawns in a good third of
        # the plots, as in North Korean and Russian Far East towns.
        ts0, ts1, tt0, tt1 = self.town
        town = land & (s >= ts0) & (s <= ts1) & (t >= tt0) & (t <= tt1)
        cell_s, cell_t = 40.0, 20.0
        i, j = np.floor(s / cell_s).astype(np.int64), np.floor(t / cell_t).astype(np.int64)
        u = (zlib.crc32(self.aoi.encode()) % 1000) / 1000.0
        hashed = ((i * 73856093) ^ (j * 19349663) ^ int(seed)) % 1000 / 1000.0
        hashed = (hashed + u) % 1.0
        roof = np.select([hashed < 0.25, hashed < 0.33, hashed < 0.36, hashed < 0.62, hashed < 0.86],
                         [ROOF_GREY, ROOF_RED, ROOF_BLUE, FOREST, GRASS], SOIL).astype(np.uint8)
        within = (np.mod(s, cell_s) > 5.0) & (np.mod(t, cell_t) > 4.0)
        street = ~within & ((np.mod(s, cell_s * 3) < 10.0) | (np.mod(t, cell_t * 4) < 8.0))
        cls[town & within] = roof[town & within]
        cls[town & street] = ASPHALT
        cls[town & ~within & ~street] = GRASS

        # Port: a concrete apron behind the straight quay, piers, then features.
        apron = (s >= s0) & (s <= s1) & (t < 0) & (t >= -90)
        cls[apron] = CONCRETE
        for name, sc, length, width in self.piers:
            cls[(np.abs(s - sc) <= width / 2) & (t >= -5) & (t <= length)] = CONCRETE
        for r in self.breakwaters + self.features:
            cls[(s >= r.s0) & (s <= r.s1) & (t >= r.t0) & (t <= r.t1)] = r.cls
        for y in self.yards:
            cls[(s >= y.s0 - 10) & (s <= y.s1 + 10) & (t >= y.t_front - y.depth - 10) & (t <= y.t_front + 10)] = ASPHALT
        return cls


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Unit-variance Gaussian-correlated noise (correlation length ``sigma_px``).

    Large scales are filtered on a coarse grid and brought back by bilinear
    interpolation written as two small matrix products (fast and exact).
    """
    from scipy import ndimage

    step = max(int(sigma_px // 3), 1)
    if step == 1:
        field_ = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma_px, mode="wrap")
        return field_ / (field_.std() + 1e-9)
    small = (shape[0] // step + 3, shape[1] // step + 3)
    field_ = ndimage.gaussian_filter(rng.standard_normal(small, dtype=np.float32), sigma_px / step, mode="wrap")
    field_ /= field_.std() + 1e-9
    i0, fr = _interp_index(shape[0], small[0], step)
    rows = field_[i0] * (1.0 - fr)[:, None] + field_[i0 + 1] * fr[:, None]
    j0, fc = _interp_index(shape[1], small[1], step)
    return rows[:, j0] * (1.0 - fc) + rows[:, j0 + 1] * fc


def _interp_index(n_out: int, n_in: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Left neighbour and weight of bilinear interpolation from a grid ``step`` times coarser."""
    pos = (np.arange(n_out) + 0.5) / step
    i0 = np.clip(np.floor(pos).astype(int), 0, n_in - 2)
    return i0, (pos - i0).astype(np.float32)


# ------------------------------------------------------------------ layouts of the known AOIs
def _utm_of(aoi: AOI, lon: float, lat: float) -> tuple[float, float]:
    tr = Transformer.from_crs("EPSG:4326", aoi.utm_crs, always_xy=True)
    return tr.transform(lon, lat)


def _rajin(aoi: AOI) -> Layout:
    grid = aoi.grid()
    # Pier 2's "b" face centre is put on the 2024 Angara berth (the only
    # source-backed berth position); the sea lies to the SSE of the quay.
    sea_az = 160.0
    anchor_s, anchor_t = 55.0 + 10.0, 210.0
    ax, ay = _utm_of(aoi, 130.2826, 42.2271)
    tmp = Layout(aoi.id, grid, (0.0, 0.0), sea_az, (0, 0), [], [], [], (0, 0, 0, 0), (0, 0, 0, 0), [])
    dx, dy = tmp.to_xy(anchor_s, anchor_t)
    origin = (ax - dx, ay - dy)
    return Layout(
        aoi=aoi.id, grid=grid, origin=origin, sea_azimuth_deg=sea_az, port_span=(-1150.0, 1180.0),
        piers=[("pier-3", -700.0, 420.0, 110.0), ("pier-2", 0.0, 420.0, 110.0), ("pier-1", 700.0, 420.0, 110.0)],
        yards=[
            Yard("yard-1", 520.0, 900.0, -110.0, 160.0, 900.0),    # behind pier 1, rail-served
            Yard("yard-2", -180.0, 200.0, -110.0, 160.0, 700.0),   # behind pier 2
            Yard("yard-3", -880.0, -520.0, -110.0, 160.0, 1200.0),  # pier 3 container terminal
        ],
        features=[
            Rect(250.0, 470.0, -270.0, -120.0, ROOF_GREY),
            Rect(-470.0, -240.0, -270.0, -120.0, ROOF_BLUE),
            Rect(930.0, 1120.0, -240.0, -120.0, ROOF_RED),
            Rect(-1150.0, 1180.0, -315.0, -300.0, RAIL),
            Rect(693.0, 707.0, -90.0, 400.0, RAIL),                # rail line along pier 1
            Rect(-1150.0, 1180.0, -355.0, -335.0, ASPHALT),
            Rect(-360.0, -340.0, -335.0, -90.0, ASPHALT),
            Rect(370.0, 390.0, -335.0, -90.0, ASPHALT),
        ],
        town=(-1600.0, 1700.0, -1300.0, -420.0),
        anchorage=(-600.0, 900.0, 700.0, 1300.0),
        moorings=[(-560.0, -150.0), (150.0, 560.0)],
        breakwaters=[Rect(1180.0, 1205.0, -20.0, 620.0, CONCRETE)],
    )


def _dunai(aoi: AOI) -> Layout:
    grid = aoi.grid()
    # The settlement (42.88028 N, 132.33750 E) on land; the quay 450 m WSW of it.
    sea_az = 250.0
    tmp = Layout(aoi.id, grid, (0.0, 0.0), sea_az, (0, 0), [], [], [], (0, 0, 0, 0), (0, 0, 0, 0), [])
    sx, sy = _utm_of(aoi, 132.3375, 42.88028)
    dx, dy = tmp.to_xy(0.0, -450.0)
    origin = (sx - dx, sy - dy)
    return Layout(
        aoi=aoi.id, grid=grid, origin=origin, sea_azimuth_deg=sea_az, port_span=(-1100.0, 350.0),
        piers=[("pier-1", -620.0, 380.0, 70.0), ("pier-2", -120.0, 260.0, 50.0)],
        yards=[
            Yard("yard-1", -950.0, -700.0, -110.0, 160.0, 600.0),
            Yard("yard-2", -520.0, -230.0, -110.0, 160.0, 500.0),
        ],
        features=[
            Rect(-180.0, 20.0, -260.0, -130.0, ROOF_GREY),
            Rect(60.0, 300.0, -240.0, -120.0, ROOF_RED),
            Rect(-1100.0, 350.0, -310.0, -295.0, RAIL),
            Rect(-1100.0, 350.0, -350.0, -330.0, ASPHALT),
        ],
        town=(-250.0, 1500.0, -1100.0, -380.0),
        anchorage=(-1500.0, 1500.0, 900.0, 2000.0),
        moorings=[(-540.0, -200.0), (0.0, 300.0)],
    )


def _generic(aoi: AOI) -> Layout:
    grid = aoi.grid()
    cx = grid.transform.c + grid.width * grid.resolution / 2
    cy = grid.transform.f - grid.height * grid.resolution / 2
    return Layout(
        aoi=aoi.id, grid=grid, origin=(cx, cy), sea_azimuth_deg=180.0, port_span=(-900.0, 900.0),
        piers=[("pier-1", -400.0, 350.0, 90.0), ("pier-2", 400.0, 350.0, 90.0)],
        yards=[Yard("yard-1", -250.0, 250.0, -110.0, 160.0, 800.0)],
        features=[Rect(-900.0, 900.0, -310.0, -295.0, RAIL), Rect(-900.0, 900.0, -350.0, -330.0, ASPHALT)],
        town=(-1500.0, 1500.0, -1200.0, -400.0),
        anchorage=(-800.0, 800.0, 600.0, 1200.0),
        moorings=[(-250.0, 250.0)],
    )


@lru_cache(maxsize=16)
def _layout_cached(aoi_id: str, path: str, aoi: AOI) -> Layout:
    builder = {"rajin": _rajin, "dunai": _dunai}.get(aoi_id, _generic)
    return builder(aoi)


def layout_for(aoi: AOI) -> Layout:
    """The synthetic layout ("default") of an AOI."""
    return _layout_cached(aoi.id, str(aoi.path), aoi)


def ship_outline(layout: Layout, berth: Berth, length: float, beam: float, bow_seaward: bool,
                 gap_m: float = 3.0) -> tuple[Polygon, dict]:
    """Hull polygon (UTM) of a ship alongside ``berth`` and its axis description."""
    s_c = berth.s + berth.side * (gap_m + beam / 2)
    t_c = berth.t1 - 8.0 - length / 2
    return hull_polygon(layout, s_c, t_c, length, beam, axis="t", forward=1 if bow_seaward else -1)


def hull_polygon(layout: Layout, s_c: float, t_c: float, length: float, beam: float, axis: str = "t",
                 forward: int = 1, heading_st: float | None = None) -> tuple[Polygon, dict]:
    """Ship hull with a pointed bow, centred at (s_c, t_c) in the coast frame.

    ``axis`` 't' lies along the pier (seaward), 's' along the quay; ``heading_st``
    (radians in the s-t plane) overrides it for anchored ships.
    """
    if heading_st is None:
        heading_st = (math.pi / 2 if axis == "t" else 0.0) + (0.0 if forward > 0 else math.pi)
    u = np.array([math.cos(heading_st), math.sin(heading_st)])   # bow direction in (s, t)
    v = np.array([-u[1], u[0]])
    half_l, half_b = length / 2, beam / 2
    shoulder = half_l - 0.15 * length
    local = [(-half_l, -half_b), (shoulder, -half_b), (half_l, 0.0), (shoulder, half_b), (-half_l, half_b)]
    pts = [(s_c + a * u[0] + b * v[0], t_c + a * u[1] + b * v[1]) for a, b in local]
    xs, ys = layout.to_xy([p[0] for p in pts], [p[1] for p in pts])
    frame = {"s": s_c, "t": t_c, "u": u, "v": v, "length": length, "beam": beam}
    return Polygon(list(zip(xs, ys))), frame
