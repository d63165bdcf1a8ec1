"""The AOI's reference water mask from its whole time series, cached per tile.

See the package docstring (:mod:`.stage`) for why Sentinel-2 decides where it
sees and how the cache keeps reruns incremental.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from scipy import ndimage

from ...detectors import water as det_water
from ..core.aoi import AOI, Grid
from ..core.atomic import atomic_path, write_bytes_atomic
from ..core.contracts import S1, S2, TileRef
from ..core.errors import UserError
from ..core.manifest import MANIFEST_DIR, Manifest, PathKeys, params_hash
from .s2_reference import OpticalReference, build_optical_reference, load_optical_reference
from .s2_reference import reference_paths as s2_reference_paths
from .scenes import load_tile, tile_water

log = logging.getLogger(__name__)


@dataclass
class Reference:
    """The AOI's reference water mask, or single-scene mode when ``water`` is None."""

    water: np.ndarray | None
    observed: np.ndarray | None
    path: Path | None
    n_dates: int
    digest: str | None = None
    optical: OpticalReference | None = None  # Sentinel-2 median and reference yards

    @property
    def paths(self) -> list[Path]:
        """Files of the reference that every date of the AOI depends on."""
        return ([self.path] if self.path is not None else []) + (self.optical.paths if self.optical else [])

    def files(self) -> "ReferenceFiles":
        """This reference by its files, for the workers: nothing large travels with the tasks."""
        return ReferenceFiles(self.path, self.n_dates, self.digest, tuple(self.optical.paths) if self.optical else (),
                              self.optical.digest if self.optical else None,
                              self.water.shape[1] if self.water is not None else 0)


@dataclass(frozen=True)
class ReferenceFiles:
    """Where a :class:`Reference` is on disk (``<out>/.berthwatch/reference/``) and which one it is.

    :meth:`load` gives back the arrays the store built (the same bits): the
    water mask from ``<aoi>.tif``, the observed mask from ``<aoi>.npz``, the
    Sentinel-2 median and yards from their rasters. Workers must see the
    output folder at the same path.
    """

    path: Path | None
    n_dates: int
    digest: str | None
    optical_paths: tuple = ()
    optical_digest: str | None = None
    width: int = 0

    @property
    def key(self) -> tuple:
        return (self.path, self.n_dates, self.digest, self.optical_digest)

    def load(self) -> Reference:
        if self.path is None:
            return Reference(None, None, None, self.n_dates)
        with rasterio.open(self.path) as ds:
            water = ds.read(1).astype(bool)
        with np.load(self.path.with_suffix(".npz")) as z:
            observed = _unpack(z["observed"], self.width)
        optical = load_optical_reference(list(self.optical_paths), self.optical_digest) if self.optical_paths else None
        return Reference(water, observed, self.path, self.n_dates, self.digest, optical)


def _pack(mask: np.ndarray) -> np.ndarray:
    return np.packbits(mask, axis=1)


def _unpack(packed: np.ndarray, width: int) -> np.ndarray:
    return np.unpackbits(packed, axis=1, count=width).astype(bool)


def fill_enclosed(water: np.ndarray, max_area_m2: float, pixel_size: float) -> np.ndarray:
    """Water with enclosed non-water holes up to ``max_area_m2`` filled.

    A ship anchored at the same spot on most dates is not water in the
    majority vote; holes enclosed by water and no larger than a big ship
    (400 m x 65 m is 26 000 m2) are sea, as in the single-scene domain of
    :func:`detectors.water.sea_domain`.
    """
    holes = ndimage.binary_fill_holes(water) & ~water
    labels, n = ndimage.label(holes)
    if n == 0:
        return water
    sizes = np.bincount(labels.ravel()) * pixel_size * pixel_size
    small = sizes <= max_area_m2
    small[0] = False
    return water | small[labels]


def _mask_digest(mask: np.ndarray) -> str:
    h = hashlib.sha256(str(mask.shape).encode())
    h.update(np.packbits(mask).tobytes())
    return h.hexdigest()[:16]


class ReferenceStore:
    """Per-AOI cache of tile water masks and the reference mask built from them."""

    def __init__(self, out_dir: Path, manifest: Manifest | PathKeys):
        self.out_dir = Path(out_dir)
        self.dir = self.out_dir / MANIFEST_DIR / "reference"
        self.manifest = manifest

    def tif_path(self, aoi_id: str) -> Path:
        return self.dir / f"{aoi_id}.tif"

    def cache_path(self, aoi_id: str) -> Path:
        return self.dir / f"{aoi_id}.npz"

    def _load_cache(self, aoi_id: str, phash: str) -> tuple[dict, dict, str | None, tuple | None]:
        path = self.cache_path(aoi_id)
        if not path.exists():
            return {}, {}, None, None
        try:
            with np.load(path) as z:
                index = json.loads(str(z["index"]))
                if index.get("params") != phash:
                    return {}, {}, None, None
                masks = {k: (z[f"water_{e['slot']}"], z[f"valid_{e['slot']}"]) for k, e in index["tiles"].items()}
                combined = (z["reference"], z["observed"]) if "reference" in z.files else None
            return index["tiles"], masks, index.get("digest"), combined
        except Exception as exc:  # a cache: truncated zip, wrong shapes, anything -> rebuilt from the tiles
            log.warning("%s: unreadable reference cache (%s); rebuilding it", path, type(exc).__name__)
            return {}, {}, None, None

    def _save_cache(self, aoi_id: str, phash: str, entries: dict, masks: dict, digest: str | None,
                    water: np.ndarray | None = None, observed: np.ndarray | None = None) -> None:
        arrays, index = {}, {}
        for slot, (key, entry) in enumerate(sorted(entries.items())):
            index[key] = {**entry, "slot": slot}
            arrays[f"water_{slot}"], arrays[f"valid_{slot}"] = masks[key]
        if water is not None:
            arrays["reference"], arrays["observed"] = _pack(water), _pack(observed)
        arrays["index"] = np.array(json.dumps({"params": phash, "digest": digest, "tiles": index}))
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        write_bytes_atomic(self.cache_path(aoi_id), buf.getvalue())

    def build(self, aoi: AOI, grid: Grid, tiles: list[TileRef], params: dict, engine=None) -> Reference:
        """Update the cache with the AOI's current tiles and return the reference.

        Tiles that fail to load are left out (their dates fail on their own,
        with the error); the reference is rebuilt without them. ``engine``
        (:class:`..core.engine.Engine`) runs the per-tile work of the
        Sentinel-2 reference; None runs it here.
        """
        ref_params = {k: params[k] for k in ("reference", "optical", "water_sar")}
        phash = params_hash(ref_params)
        old_entries, old_masks, old_digest, old_combined = self._load_cache(aoi.id, phash)
        entries, masks = {}, {}
        for t in tiles:
            key = self.manifest.rel(t.path)
            old = old_entries.get(key)
            try:
                sha = self.manifest.checksum(t.path, old)
                if old and old["sha256"] == sha:
                    st = t.path.stat()  # refresh size/mtime so a touched tile is hashed once
                    entries[key], masks[key] = {**old, "size": st.st_size, "mtime_ns": st.st_mtime_ns}, old_masks[key]
                    continue
                bands, _ = load_tile(t, grid)
                water, valid = tile_water(t.sensor, bands, params, grid.resolution)
            except Exception as exc:  # the date fails on its own with the error; others go on
                log.debug("reference mask of %s leaves out %s: %s", aoi.id, t.path, exc)
                continue
            st = t.path.stat()
            entries[key] = {"sha256": sha, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                            "sensor": t.sensor, "date": t.date.isoformat()}
            masks[key] = (_pack(water), _pack(valid))

        dates = {e["date"] for e in entries.values()}
        rp = params["reference"]
        tif = self.tif_path(aoi.id)
        if len(dates) < rp["min_dates"]:
            if tif.exists():
                tif.unlink()
            self._remove_optical(aoi.id)
            if entries != old_entries or old_digest is not None:
                self._save_cache(aoi.id, phash, entries, masks, None)
            return Reference(None, None, None, len(dates))

        if entries == old_entries and old_combined is not None and old_digest and tif.exists():
            water, observed = (_unpack(a, grid.width) for a in old_combined)
            digest = old_digest
        else:
            water, observed = self._combine(entries, masks, grid, rp)
            digest = _mask_digest(water)
            if digest != old_digest or not tif.exists():
                self._write_tif(tif, water, grid)
            self._save_cache(aoi.id, phash, entries, masks, digest, water, observed)
        return Reference(water, observed, tif, len(dates), digest,
                         self._optical(aoi, grid, tiles, entries, water, digest, params, engine))

    def _optical(self, aoi: AOI, grid: Grid, tiles: list[TileRef], entries: dict, water: np.ndarray,
                 digest: str, params: dict, engine) -> OpticalReference | None:
        """The Sentinel-2 median and reference yards, with Sentinel-2 history; else none (files removed)."""
        s2 = {t.path: (entries[k]["sha256"], entries[k]["date"]) for t in tiles
              if t.sensor == S2 and (k := self.manifest.rel(t.path)) in entries}
        if len({date for _, date in s2.values()}) < params["reference"]["min_dates"]:
            self._remove_optical(aoi.id)
            return None
        return build_optical_reference(self.dir, aoi.id, grid, s2, water, digest, params, engine)

    def _remove_optical(self, aoi_id: str) -> None:
        for p in s2_reference_paths(self.dir, aoi_id):
            p.unlink(missing_ok=True)

    @staticmethod
    def _combine(entries: dict, masks: dict, grid: Grid, rp: dict) -> tuple[np.ndarray, np.ndarray]:
        """Majority water per sensor; Sentinel-2 decides where it has observations.

        Computed in row blocks so that the (T, rows, W) stacks stay below
        ~64 MB however long the time series.
        """
        h, w = grid.height, grid.width
        water = np.zeros((h, w), bool)
        observed = np.zeros((h, w), bool)
        by_sensor = defaultdict(list)
        for key, e in entries.items():
            by_sensor[e["sensor"]].append(masks[key])
        n = max((len(v) for v in by_sensor.values()), default=1)
        rows = max(1, (64 << 20) // max(n * w, 1))
        for r0 in range(0, h, rows):
            r1 = min(h, r0 + rows)
            decided = np.zeros((r1 - r0, w), bool)
            for sensor in (S2, S1):  # priority order
                pairs = by_sensor.get(sensor)
                if not pairs:
                    continue
                ws = np.stack([_unpack(p[0][r0:r1], w) for p in pairs])
                vs = np.stack([_unpack(p[1][r0:r1], w) for p in pairs])
                ref = det_water.reference_water_mask(ws, vs, min_fraction=rp["min_fraction"],
                                                     min_observations=rp["min_observations"])
                seen = vs.sum(axis=0) >= max(int(rp["min_observations"]), 1)
                take = seen & ~decided
                water[r0:r1][take] = ref[take]
                decided |= seen
            observed[r0:r1] = decided
        return fill_enclosed(water, rp["max_enclosed_area_m2"], grid.resolution), observed

    @staticmethod
    def _write_tif(path: Path, water: np.ndarray, grid: Grid) -> None:
        profile = dict(driver="GTiff", dtype="uint8", count=1, width=grid.width, height=grid.height,
                       crs=grid.crs, transform=grid.transform, compress="deflate", nodata=None)
        with atomic_path(path) as tmp:
            with rasterio.open(tmp, "w", **profile) as ds:
                ds.write(water.astype(np.uint8), 1)
                ds.set_band_description(1, "reference_water")


def _build_in_worker(out_dir: Path, aoi: AOI, tiles: list[TileRef], params: dict) -> Reference:
    return ReferenceStore(out_dir, PathKeys(out_dir)).build(aoi, aoi.grid(), tiles, params)


def build_references(store: ReferenceStore, work: list[tuple[AOI, list[TileRef]]], params: dict,
                     engine=None) -> list:
    """The reference of every ``(aoi, tiles)``, in order; an AOI whose reference fails gets its exception.

    With several AOIs and parallel workers each AOI is one task (its files
    are written atomically by the worker, into the shared output folder;
    each AOI's files are written by one task only); otherwise the AOIs are
    built here one after the other, with their per-tile work on ``engine``.
    The result does not depend on where it is built.
    """
    out: list = []
    if engine is not None and len(work) >= 2 and engine.parallel(len(work)):
        args = [(store.out_dir.absolute(), aoi, tiles, params) for aoi, tiles in work]
        for future in engine.submit_all(_build_in_worker, args, preload=__name__):
            try:
                out.append(future.result())
            except Exception as exc:  # noqa: BLE001 - reported per AOI by the stage
                out.append(exc)
        return out
    for aoi, tiles in work:
        try:
            out.append(store.build(aoi, aoi.grid(), tiles, params, engine))
        except Exception as exc:  # noqa: BLE001 - reported per AOI by the stage
            out.append(exc)
    return out
