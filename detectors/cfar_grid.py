"""The coarse block grid of the CFAR (:mod:`.cfar`): block sums, ring moments, threshold scans.

Background moments are accumulated once per square block of pixels (a
third to a seventh of the guard window); ring statistics come from integral
images of that grid; thresholds are constant within a block and compared
with the image strip by strip (``STRIP_BLOCKS`` block rows). A block's sums
depend on its own pixels only, so they can be computed window by window and
assembled (:mod:`pipeline.detect.sar_windows`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["STRIP_BLOCKS", "ENL_MAX", "block_sums", "exceeding"]

#: Strips are this many block rows high (the unit of the candidate scans).
STRIP_BLOCKS = 4
#: ENL given to blocks whose clutter has no variance (and the top of the factor table).
ENL_MAX = 200.0


def _block_geometry(guard_px: float, background_px: float) -> tuple[int, int, int]:
    """Block side and guard / background half-widths (in blocks).

    The boxes are odd numbers of blocks centred on the block of the test
    pixel; the block side is picked, among a third to a seventh of the guard
    box, to match both box sizes best (ties go to the larger, cheaper block).
    At 10 m pixels SNAP's 500 m / 800 m give 16-pixel blocks with boxes of
    3 and 5 blocks: 480 m and 800 m.
    """
    best = None
    lo = max(1, int(guard_px // 7))
    hi = max(lo, int(guard_px // 3))
    for b in range(lo, hi + 1):
        kg = max(1, int(round((guard_px / b - 1) / 2)) * 2 + 1)
        ko = max(kg + 2, int(round((background_px / b - 1) / 2)) * 2 + 1)
        err = abs(kg * b - guard_px) / guard_px + abs(ko * b - background_px) / background_px
        if best is None or err <= best[0] + 1e-9:
            best = (err, b, kg // 2, ko // 2)
    return best[1], best[2], best[3]


def block_sums(image, valid, block):
    """Per-block sum, sum of squares and valid count (float64 coarse grids).

    Pixel ``(r, c)`` belongs to block ``(r // block, c // block)``; a block's
    sums depend on its own pixels only, so the sums of a window whose origin
    is a multiple of ``block`` are that slice of the whole image's.

    Parameters
    ----------
    image : (H, W) float32 ndarray
        Intensity.
    valid : (H, W) bool ndarray or None
        Pixels to count (None: all).
    block : int
        Block side in pixels.

    Returns
    -------
    s1, s2, n : (ceil(H / block), ceil(W / block)) float64 ndarrays
    """
    h, w = image.shape
    nr, nc = -(-h // block), -(-w // block)
    s1 = np.zeros((nr, nc))
    s2 = np.zeros((nr, nc))
    n = np.zeros((nr, nc))
    wf = (w // block) * block
    step = STRIP_BLOCKS * block
    for r0 in range(0, h, step):
        strip = image[r0 : r0 + step]
        rows = strip.shape[0]
        br0 = r0 // block
        if valid is not None:
            vstrip = valid[r0 : r0 + step]
            strip = np.where(vstrip, strip, np.float32(0))
        else:
            strip = np.asarray(strip, dtype=np.float32)
        for out, data in ((s1, strip), (s2, strip * strip), (n, None)):
            if data is None:
                if valid is None:
                    continue
                data = vstrip.astype(np.float32)
            full = (rows // block) * block
            if full:
                rs = data[:full].reshape(full // block, block, w).sum(axis=1, dtype=np.float32)
                out[br0 : br0 + full // block, : wf // block] = rs[:, :wf].reshape(
                    full // block, wf // block, block
                ).sum(axis=2)
                if wf < w:
                    out[br0 : br0 + full // block, -1] = rs[:, wf:].sum(axis=1)
            if full < rows:
                rs = data[full:].sum(axis=0, dtype=np.float32)
                out[br0 + full // block, : wf // block] = rs[:wf].reshape(-1, block).sum(axis=1)
                if wf < w:
                    out[br0 + full // block, -1] = rs[wf:].sum()
    if valid is None:
        rows_in = np.full(nr, block, dtype=float)
        rows_in[-1] = h - (nr - 1) * block
        cols_in = np.full(nc, block, dtype=float)
        cols_in[-1] = w - (nc - 1) * block
        n = np.outer(rows_in, cols_in)
    return s1, s2, n


def _box_sum(integral, half, shape, padded=None):
    """Sum over a (2*half+1)^2 box of blocks centred on every block, clipped at edges.

    ``integral`` is the (R+1, C+1) integral image; box corners outside the
    grid are clamped to its edge, which clips the box. The clamping is an
    edge-padded copy of the integral (``padded``: ``(copy, pad)`` with
    ``pad >= half``, to share one copy between box sizes), so the four
    corners are views of it: three passes over the grid, not nine.
    """
    nr, nc = shape
    if padded is None:
        padded = np.pad(integral, half, mode="edge"), half
    e, pad = padded
    # e[pad + k, pad + l] = integral[clip(k, 0, R), clip(l, 0, C)]: the low corner of block r is
    # integral[max(r - half, 0)], the high one integral[min(r + half + 1, R)].
    lo, hi = pad - half, pad + half + 1
    a = np.subtract(e[hi:hi + nr, hi:hi + nc], e[lo:lo + nr, hi:hi + nc])
    a -= e[hi:hi + nr, lo:lo + nc]
    a += e[lo:lo + nr, lo:lo + nc]
    return a


def _box_sum_at(integral, half, shape, rows, cols):
    """:func:`_box_sum` at the blocks ``rows, cols`` only (the same arithmetic, so the same bits)."""
    return _box_sums_at([integral], half, shape, rows, cols)[0]


def _box_sums_at(integrals, half, shape, rows, cols):
    """:func:`_box_sum_at` of several integrals of one grid (the corners' positions computed once)."""
    nr, nc = shape
    width = nc + 1
    r_hi, r_lo = np.minimum(rows + half + 1, nr) * width, np.maximum(rows - half, 0) * width
    c_hi, c_lo = np.minimum(cols + half + 1, nc), np.maximum(cols - half, 0)
    corners = (r_hi + c_hi, r_lo + c_hi, r_hi + c_lo, r_lo + c_lo)
    out = []
    for integral in integrals:
        flat = integral.reshape(-1)
        a = flat[corners[0]] - flat[corners[1]]
        a -= flat[corners[2]]
        a += flat[corners[3]]
        out.append(a)
    return out


def _integral(a):
    out = np.zeros((a.shape[0] + 1, a.shape[1] + 1))
    np.cumsum(np.cumsum(a, axis=0), axis=1, out=out[1:, 1:])
    return out


def _ring_moments(sums, guard_half, outer_half, min_background, widen=True):
    """Ring mean, variance and ENL per block.

    Rings with fewer than ``min_background`` valid pixels are widened by
    doubling the outer box; the last resort is the whole image. Without
    ``widen`` their moments are NaN.
    """
    s1, s2, n = sums
    shape = s1.shape
    ints = [_integral(a) for a in (s1, s2, n)]
    pads = [(np.pad(i, outer_half, mode="edge"), outer_half) for i in ints]  # one copy for both boxes
    guard = [_box_sum(i, guard_half, shape, p) for i, p in zip(ints, pads)]
    ring = [_box_sum(i, outer_half, shape, p) - g for i, p, g in zip(ints, pads, guard)]
    del pads
    rs1, rs2, rn = ring
    todo = rn < min_background
    if not widen:
        rn = np.where(todo, np.nan, rn)
        todo = np.zeros_like(todo)
    # Rings to widen are few (narrow water, chips; inland blocks): their box sums are taken at those
    # blocks only, by linear index (rs1, rs2, rn and the guard sums are C-ordered grids).
    rows, cols = np.nonzero(todo)
    at = rows * shape[1] + cols
    inner = [g.reshape(-1)[at] for g in guard]
    half = outer_half * 2
    while rows.size and half <= 2 * max(shape):
        wide = _box_sums_at(ints, half, shape, rows, cols)
        w1, w2, wn = (b - g for b, g in zip(wide, inner))
        ok = wn >= min_background
        for grid, part in ((rs1, w1), (rs2, w2), (rn, wn)):
            grid.reshape(-1)[at[ok]] = part[ok]
        rows, cols, at = rows[~ok], cols[~ok], at[~ok]
        inner = [g[~ok] for g in inner]
        half *= 2
    if rows.size:
        for grid, total in ((rs1, s1.sum()), (rs2, s2.sum()), (rn, n.sum())):
            grid.reshape(-1)[at] = total
    with np.errstate(invalid="ignore", divide="ignore"):
        rs1 /= rn
        rs2 /= rn
        mean = rs1
        var = rs2 - mean * mean
        enl = np.where(var > 0, mean * mean / var, ENL_MAX)
    return mean, var, enl


def exceeding(image, threshold, block, valid, strips=None):
    """Row and column indices of pixels above their block's threshold, in row-major order.

    Parameters
    ----------
    image : (H, W) float32 ndarray
        Intensity.
    threshold : (R, C) ndarray
        Threshold per block (compared in float32).
    block : int
        Block side in pixels.
    valid : (H, W) bool ndarray or None
        Only these pixels can exceed.
    strips : iterable of int, optional
        Restrict the scan to these strip numbers, ascending (strips are
        ``STRIP_BLOCKS`` block rows high).
    """
    h, w = image.shape
    step = STRIP_BLOCKS * block
    rows_out, cols_out = [np.empty(0, np.intp)], [np.empty(0, np.intp)]
    buf = np.empty((step, w), dtype=bool)
    starts = range(0, h, step) if strips is None else (int(k) * step for k in strips)
    for r0 in starts:
        strip = image[r0 : r0 + step]
        rows = strip.shape[0]
        br0 = r0 // block
        nb = -(-rows // block)
        t = np.repeat(threshold[br0 : br0 + nb].astype(np.float32), block, axis=1)[:, :w]
        full = (rows // block) * block
        out = buf[:rows]
        if full:
            np.greater(
                strip[:full].reshape(full // block, block, w),
                t[: full // block, None, :],
                out=out[:full].reshape(full // block, block, w),
            )
        if full < rows:
            np.greater(strip[full:], t[-1][None, :], out=out[full:])
        if valid is not None:
            out &= valid[r0 : r0 + rows]
        flat = np.flatnonzero(out)
        rows_out.append(flat // w + r0)
        cols_out.append(flat % w)
    return np.concatenate(rows_out), np.concatenate(cols_out)


def _subtract_pixels(sums, values, rr, cc, block):
    """Remove the given pixels from the block sums (sparse: they are few)."""
    s1, s2, n = sums
    if rr.size == 0:
        return sums
    v = values.astype(np.float64)
    idx = (rr // block) * s1.shape[1] + (cc // block)
    size = s1.size
    d1 = np.bincount(idx, weights=v, minlength=size).reshape(s1.shape)
    d2 = np.bincount(idx, weights=v * v, minlength=size).reshape(s1.shape)
    dn = np.bincount(idx, minlength=size).reshape(s1.shape)
    return s1 - d1, s2 - d2, n - dn
