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

import datetime as dt
import math
import zlib
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from pyproj import Transformer
from shapely.geometry import Polygon
from shapely.ops import unary_union

from .aoi import AOI, Grid

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
        noise = _smooth_noise(rng, (h, w), 40.0 / res * 4) * 120.0 + _smooth_noise(rng, (h, w), 8.0 / res * 4) * 15.0
        s0, s1 = self.port_span
        taper = np.clip(np.maximum(s0 - s, s - s1) / 150.0, 0.0, 1.0)
        coast = noise * taper
        land = t < coast
        cls = np.full((h, w), WATER, dtype=np.uint8)
        veg = _smooth_noise(rng, (h, w), 30.0 / res * 4)
        cls[land] = np.where(veg[land] > -0.2, FOREST, GRASS)
        soil = _smooth_noise(rng, (h, w), 12.0 / res * 4) > 1.1
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


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
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


# ------------------------------------------------------------------ scenario bookkeeping
def yard_inventory(scenario, layout: Layout, aoi: str, date: dt.date) -> dict[str, float]:
    """TEU in each yard of ``aoi`` at the end of ``date``; checks every event on the way."""
    from .scenario import _ScenarioConflict

    teu = {y.name: scenario.yard_initial_teu.get(aoi, {}).get(y.name, y.baseline_teu) for y in layout.yards}
    indexed = [(i, e) for i, e in enumerate(scenario.yard_events) if e.aoi == aoi]
    for i, e in sorted(indexed, key=lambda ie: (ie[1].date, ie[0])):
        yard = layout.yard(e.yard)
        new = teu[yard.name] + e.teu
        if new < -1e-6:
            raise _ScenarioConflict(f"yard_events[{i}].teu",
                                    f"{e.teu:+g} TEU on {e.date} leaves {aoi} {yard.name} below empty "
                                    f"({teu[yard.name]:g} TEU held)")
        if new > yard.capacity_teu:
            raise _ScenarioConflict(f"yard_events[{i}].teu",
                                    f"{e.teu:+g} TEU on {e.date} overfills {aoi} {yard.name} "
                                    f"(capacity {yard.capacity_teu:.0f} TEU)")
        if e.date <= date:
            teu[yard.name] = new
    return teu


def assign_berths(scenario, layout: Layout, aoi: str) -> dict[str, list[tuple[dt.date, dt.date, Berth]]]:
    """Berth of every port call at ``aoi`` for each part of its stay (first free face that fits)."""
    from .scenario import _ScenarioConflict

    berths = layout.berths()
    booked: dict[str, list[tuple[dt.date, dt.date]]] = {b.id: [] for b in berths}
    out: dict[str, list[tuple[dt.date, dt.date, Berth]]] = {}
    calls = [(i, pc) for i, pc in enumerate(scenario.port_calls) if pc.aoi == aoi]
    for i, pc in sorted(calls, key=lambda ic: (ic[1].arrive, ic[0])):
        parts, d0, want = [], pc.arrive, pc.berth
        for m in pc.moves:
            parts.append((d0, m.date - dt.timedelta(days=1), want))
            d0, want = m.date, m.berth
        parts.append((d0, pc.depart, want))
        out[pc.id] = []
        for p0, p1, group in parts:
            options = [b for b in berths if group is None or b.group == group or b.id == group]
            fits = [b for b in options if b.max_length_m >= pc.length_m]
            if not fits:
                raise _ScenarioConflict(f"port_calls[{i}].length_m",
                                        f"{pc.length_m:g} m does not fit berth {group or 'any'} at {aoi} "
                                        f"(longest {max(b.max_length_m for b in options):.0f} m)")
            free = [b for b in fits if all(p1 < q0 or q1 < p0 for q0, q1 in booked[b.id])]
            if not free:
                raise _ScenarioConflict(f"port_calls[{i}]",
                                        f"no free berth {group or ''} at {aoi} for {pc.vessel} {p0}..{p1}".replace("  ", " "))
            booked[free[0].id].append((p0, p1))
            out[pc.id].append((p0, p1, free[0]))
    return out


def berth_on(assignment: list[tuple[dt.date, dt.date, Berth]], date: dt.date) -> Berth | None:
    for d0, d1, b in assignment:
        if d0 <= date <= d1:
            return b
    return None


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


# ------------------------------------------------------------------ the state of a port on one day
@dataclass
class SimVessel:
    name: str
    call_id: str | None
    length_m: float
    beam_m: float
    frame: dict            # s, t, u, v, length, beam (coast frame)
    outline: Polygon       # UTM
    at_berth: bool
    berth: str | None
    deck_style: int        # index into the simulator's deck palettes
    deck_teu: float = 0.0  # containers visible on deck (departure day)
    kind: str = "port_call"


@dataclass
class SimStack:
    yard: str
    teu: float
    rects: list[tuple[float, float, float, float]]
    outline: object        # UTM polygon or None when empty


@dataclass
class DayState:
    aoi: str
    date: dt.date
    vessels: list[SimVessel]
    stacks: list[SimStack]


def _stable(*parts) -> int:
    return zlib.crc32("|".join(str(p) for p in parts).encode())


def rng_for(seed: int, *parts) -> np.random.Generator:
    """A generator that depends only on the scenario seed and the given labels."""
    return np.random.default_rng([int(seed), _stable(*parts)])


def day_state(scenario, layout: Layout, aoi: str, date: dt.date, assignments) -> DayState:
    """Vessels and stacks at ``aoi`` on ``date`` (same for every sensor that day)."""
    vessels: list[SimVessel] = []
    for pc in scenario.port_calls:
        if pc.aoi != aoi or not pc.on(date):
            continue
        berth = berth_on(assignments[pc.id], date)
        if berth is None:
            continue
        rng = rng_for(scenario.seed, "vessel", pc.vessel)
        bow_seaward = bool(rng.random() < 0.5)
        deck_style = int(rng.integers(0, 4))
        outline, frame = ship_outline(layout, berth, pc.length_m, pc.beam_m, bow_seaward)
        deck = pc.deck_teu_out if date == pc.depart else 0.0
        vessels.append(SimVessel(pc.vessel, pc.id, pc.length_m, pc.beam_m, frame, outline, True, berth.id,
                                 deck_style, deck))
    vessels += _background_vessels(scenario, layout, aoi, date, vessels)
    inventory = yard_inventory(scenario, layout, aoi, date)
    stacks = []
    for y in layout.yards:
        teu = inventory[y.name]
        stacks.append(SimStack(y.name, teu, y.filled_rects(teu), layout.stack_polygon(y, teu)))
    return DayState(aoi, date, vessels, stacks)


def _background_vessels(scenario, layout: Layout, aoi: str, date: dt.date, taken: list[SimVessel]) -> list[SimVessel]:
    """Small craft (12-35 m) moored along the quay between piers or at anchor, random each day."""
    n = scenario.background_vessels.get(aoi, 0)
    rng = rng_for(scenario.seed, "background", aoi, date.isoformat())
    out: list[SimVessel] = []
    busy = [v.outline.buffer(30.0) for v in taken]
    for k in range(n):
        length = float(rng.uniform(12.0, 35.0))
        beam = float(np.clip(length * rng.uniform(0.22, 0.3), 4.0, 10.0))
        for _ in range(20):
            moored = bool(rng.random() < 0.6) and layout.moorings
            if moored:
                s0, s1 = layout.moorings[int(rng.integers(len(layout.moorings)))]
                s_c = float(rng.uniform(s0 + length / 2, s1 - length / 2))
                outline, frame = hull_polygon(layout, s_c, 2.0 + beam / 2, length, beam, axis="s",
                                              forward=1 if rng.random() < 0.5 else -1)
            else:
                a0, a1, b0, b1 = layout.anchorage
                outline, frame = hull_polygon(layout, float(rng.uniform(a0, a1)), float(rng.uniform(b0, b1)),
                                              length, beam, heading_st=float(rng.uniform(0, 2 * math.pi)))
            if not any(outline.intersects(b) for b in busy):
                break
        else:
            continue
        busy.append(outline.buffer(30.0))
        out.append(SimVessel(f"small craft {k + 1}", None, length, beam, frame, outline, bool(moored), None,
                             int(rng.integers(0, 5)), 0.0, kind="background"))
    return out


# ------------------------------------------------------------------ sub-pixel geometry of objects
def pixel_window(grid: Grid, geom, margin_px: int = 3) -> tuple[int, int, int, int] | None:
    """(r0, r1, c0, c1) of the 10 m pixels around ``geom`` (UTM), clipped to the grid."""
    minx, miny, maxx, maxy = geom.bounds
    t = grid.transform
    c0 = int(math.floor((minx - t.c) / t.a)) - margin_px
    c1 = int(math.ceil((maxx - t.c) / t.a)) + margin_px
    r0 = int(math.floor((t.f - maxy) / -t.e)) - margin_px
    r1 = int(math.ceil((t.f - miny) / -t.e)) + margin_px
    r0, c0 = max(r0, 0), max(c0, 0)
    r1, c1 = min(r1, grid.height), min(c1, grid.width)
    if r1 <= r0 or c1 <= c0:
        return None
    return r0, r1, c0, c1


def window_st(layout: Layout, win: tuple[int, int, int, int], oversample: int) -> tuple[np.ndarray, np.ndarray]:
    """Coast-frame coordinates of the sub-pixel centres of a 10 m pixel window."""
    r0, r1, c0, c1 = win
    g = layout.grid
    res = g.resolution / oversample
    xs = g.transform.c + c0 * g.resolution + (np.arange((c1 - c0) * oversample) + 0.5) * res
    ys = g.transform.f - r0 * g.resolution - (np.arange((r1 - r0) * oversample) + 0.5) * res
    x, y = np.meshgrid(xs, ys)
    return layout.to_st(x, y)


def block_mean(a: np.ndarray, k: int) -> np.ndarray:
    """Mean over k x k blocks of the last two axes (their sizes are multiples of k)."""
    h, w = a.shape[-2] // k, a.shape[-1] // k
    return a.reshape(*a.shape[:-2], h, k, w, k).mean(axis=(-3, -1))


def vessel_masks(v: SimVessel, s: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
    """Hull, superstructure and cargo-deck masks of a vessel on sub-pixel coordinates."""
    f = v.frame
    ds, dt_ = s - f["s"], t - f["t"]
    along = ds * f["u"][0] + dt_ * f["u"][1]
    across = ds * f["v"][0] + dt_ * f["v"][1]
    half_l, half_b = f["length"] / 2, f["beam"] / 2
    shoulder = half_l - 0.15 * f["length"]
    width = np.where(along <= shoulder, half_b, half_b * (half_l - along) / (half_l - shoulder))
    hull = (np.abs(along) <= half_l) & (np.abs(across) <= width)
    aft = along < -half_l + 0.16 * f["length"]
    house = hull & aft & (along > -half_l + 0.03 * f["length"]) & (np.abs(across) <= 0.42 * f["beam"])
    cargo = hull & ~aft & (along < shoulder - 0.02 * f["length"]) & (np.abs(across) <= 0.40 * f["beam"])
    return {"hull": hull, "house": house, "cargo": cargo, "along": along, "across": across}


def stack_masks(layout: Layout, stack: SimStack, s: np.ndarray, t: np.ndarray, salt: int) -> dict[str, np.ndarray]:
    """Container slots of a yard stack: coverage, container presence, tiers and colour index.

    Slot contents depend only on the slot's position in the yard (and ``salt``),
    so the inventory looks the same from day to day where it did not change.
    """
    yard = layout.yard(stack.yard)
    inside = np.zeros(s.shape, dtype=bool)
    for s0, s1, t0, t1 in stack.rects:
        inside |= (s >= s0) & (s < s1) & (t >= t0) & (t < t1)
    ds = s - yard.s0
    dt_ = yard.t_front - t
    block_s, in_s = np.divmod(ds, BLOCK_S_M)
    block_t, in_t = np.divmod(dt_, BLOCK_T_M)
    slot_s = np.floor(in_s / SLOT_L_M)
    row_t = np.floor(in_t / SLOT_W_M)
    on_slot = (slot_s < SLOTS_PER_BLOCK) & (row_t < ROWS_PER_BLOCK)
    ks = (block_s * SLOTS_PER_BLOCK + slot_s).astype(np.int64)
    kt = (block_t * ROWS_PER_BLOCK + row_t).astype(np.int64)

    def u(a, b, k):
        h = (a * 2654435761 + b * 40503 + k * 97 + salt * 1013904223) & 0xFFFFFFFF
        h = (h ^ (h >> 15)) * 2246822519 & 0xFFFFFFFF
        h = (h ^ (h >> 13)) * 3266489917 & 0xFFFFFFFF
        return ((h ^ (h >> 16)) & 0xFFFFFF) / float(0x1000000)

    occupied = inside & on_slot & (u(ks, kt, 1) < PACKING)
    # 1-4 tiers with probabilities 0.2, 0.3, 0.3, 0.2 (mean 2.5 = MEAN_TIERS).
    tiers = 1 + np.searchsorted(np.array([0.2, 0.5, 0.8]), u(ks, kt, 2), side="right")
    # Lines stack their boxes together: runs of 2-3 slots along a row share a colour.
    colour = u(ks // 3, kt, 3)
    return {"inside": inside, "occupied": occupied, "tiers": np.where(occupied, tiers, 0), "colour_u": colour}


def stack_renders(layout: Layout, state: DayState, salt: int):
    """``(window, masks)`` of each of the day's stacks on the grid (:func:`stack_masks` on its window)."""
    for stack in state.stacks:
        if stack.outline is None:
            continue
        win = pixel_window(layout.grid, stack.outline, 2)
        if win is None:
            continue
        s, t = window_st(layout, win, OVERSAMPLE)
        yield win, stack_masks(layout, stack, s, t, salt=salt)


def vessel_renders(layout: Layout, state: DayState):
    """``(vessel, window, masks)`` of each of the day's vessels on the grid (:func:`vessel_masks`)."""
    for v in state.vessels:
        win = pixel_window(layout.grid, v.outline, 2)
        if win is None:
            continue
        s, t = window_st(layout, win, OVERSAMPLE)
        yield v, win, vessel_masks(v, s, t)
