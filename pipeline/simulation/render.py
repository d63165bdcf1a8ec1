"""Sub-pixel geometry of ships and container stacks, shared by the two simulators."""

from __future__ import annotations

import math

import numpy as np

from ..core.aoi import Grid
from .layout import (
    BLOCK_S_M, BLOCK_T_M, OVERSAMPLE, PACKING, ROWS_PER_BLOCK, SLOT_L_M, SLOT_W_M, SLOTS_PER_BLOCK, Layout,
)
from .world import DayState, SimStack, SimVessel


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
