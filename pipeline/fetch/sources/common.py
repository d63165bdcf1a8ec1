"""What every fetch source shares: scenes and tile plans, retries, reprojection, mosaicking, validation.

Mosaicking order (the same for every source, so a date's tile does not depend on
where it came from): per pixel, the first valid value of the scenes taken in
:func:`mosaic_order` — Sentinel-2 by ascending scene cloud cover (ties: latest
acquisition first), Sentinel-1 latest acquisition first. The Sentinel Hub source
asks the Process API for the same order (``leastCC`` / ``mostRecent``).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, TypeVar

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import reproject

from ...core.aoi import AOI, Grid
from ...core.contracts import S1, S2, SENSOR_BANDS, SCENE_ID

log = logging.getLogger("berthwatch.fetch")
T = TypeVar("T")

#: Categorical bands are resampled with nearest neighbour, the others bilinearly.
CATEGORICAL_BANDS = frozenset({"SCL"})
SENSOR_PREFIX = {S1: "S1", S2: "S2"}


# ---------------------------------------------------------------- data model
@dataclass(frozen=True)
class BandAsset:
    """Where one band of a scene lives and how to turn its values into the tile's units.

    ``value = raw * scale + offset``; raw values equal to ``nodata`` become NaN.
    ``band_index`` is 1-based inside ``href``.
    """

    href: str
    band_index: int = 1
    scale: float = 1.0
    offset: float = 0.0
    nodata: float | None = None


@dataclass(frozen=True)
class Scene:
    """One source product (an S2 granule or an S1 slice) intersecting an AOI."""

    id: str
    datetime: dt.datetime
    platform: str
    cloud_cover: float | None = None
    orbit_state: str | None = None
    simulated: bool = False
    bands: dict[str, BandAsset] = field(default_factory=dict, hash=False, compare=False)
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def date(self) -> dt.date:
        return self.datetime.astimezone(dt.timezone.utc).date()


@dataclass
class TilePlan:
    """The tile of one AOI, sensor and UTC acquisition date, made from ``scenes`` in mosaic order."""

    aoi: AOI
    sensor: str
    date: dt.date
    scenes: list[Scene]
    source: str
    processing: dict

    @property
    def key(self) -> str:
        return f"{self.aoi.id}/{self.sensor}/{self.date.isoformat()}"

    @property
    def scene_id(self) -> str:
        """The product id for a single scene, else ``S2_20230908_2scenes``."""
        if len(self.scenes) == 1:
            return safe_scene_id(self.scenes[0].id)
        return f"{SENSOR_PREFIX[self.sensor]}_{self.date:%Y%m%d}_{len(self.scenes)}scenes"

    @property
    def product_ids(self) -> list[str]:
        return [s.id for s in self.scenes]

    @property
    def datetime(self) -> dt.datetime:
        return self.scenes[0].datetime

    @property
    def platform(self) -> str:
        return self.scenes[0].platform

    @property
    def simulated(self) -> bool:
        return any(s.simulated for s in self.scenes)

    def params(self) -> dict:
        """What determines the tile: hashed into the fetch manifest (never credentials)."""
        params = {"source": self.source, "sensor": self.sensor, "products": sorted(self.product_ids),
                  "processing": self.processing, "grid": grid_signature(self.aoi.grid())}
        fingerprints = [s.extra["fingerprint"] for s in self.scenes if s.extra.get("fingerprint")]
        if fingerprints:  # local files: a regenerated catalog with the same ids must refetch
            params["inputs"] = fingerprints
        return params


class Source(Protocol):
    name: str

    def search(self, aoi: AOI, sensor: str, start: dt.date | None, end: dt.date | None) -> list[Scene]: ...

    def processing(self, sensor: str) -> dict: ...

    def fetch(self, plan: TilePlan, grid: Grid) -> dict[str, np.ndarray]: ...


def safe_scene_id(product_id: str) -> str:
    sid = re.sub(r"\.SAFE$", "", product_id)
    sid = re.sub(r"[^A-Za-z0-9_.-]", "-", sid).strip("-.") or "scene"
    return sid if SCENE_ID.match(sid) else f"scene-{sid}"


def grid_signature(grid: Grid) -> list:
    return [grid.crs.to_epsg(), grid.width, grid.height, *[round(v, 6) for v in list(grid.transform)[:6]]]


def mosaic_order(sensor: str, scenes: list[Scene]) -> list[Scene]:
    if sensor == S2:
        return sorted(scenes, key=lambda s: (s.cloud_cover if s.cloud_cover is not None else 100.0,
                                             -s.datetime.timestamp(), s.id))
    return sorted(scenes, key=lambda s: (-s.datetime.timestamp(), s.id))


def plan_tiles(aoi: AOI, sensor: str, scenes: list[Scene], source: str, processing: dict) -> list[TilePlan]:
    """Group scenes by UTC acquisition date: one tile per sensor and date."""
    by_date: dict[dt.date, list[Scene]] = {}
    for s in scenes:
        by_date.setdefault(s.date, []).append(s)
    return [TilePlan(aoi, sensor, d, mosaic_order(sensor, by_date[d]), source, processing) for d in sorted(by_date)]


def in_range(date: dt.date, start: dt.date | None, end: dt.date | None) -> bool:
    return (start is None or date >= start) and (end is None or date <= end)


# ---------------------------------------------------------------- retries
class TransientError(Exception):
    """A failure worth retrying (bad or truncated payload, throttling, server error)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``base_delay * factor**attempt`` (with jitter), capped at ``max_delay``."""

    attempts: int = 4
    base_delay: float = 2.0
    factor: float = 3.0
    max_delay: float = 120.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        d = self.base_delay * self.factor ** attempt
        return min(d * (1.0 + 0.1 * random.random()), self.max_delay)


def resolve_host(url: str, what: str) -> None:
    """Fail at once, naming the host, when the host of ``url`` does not resolve.

    A name that does not resolve (a typo, no network, no DNS) will not resolve
    on a retry seconds later; without this check each retry layer of the HTTP
    clients waits its backoff first (about a minute) and the error names a
    connection pool instead of the host.
    """
    import socket
    from urllib.parse import urlsplit

    from ...core.errors import UserError

    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise UserError(f"{what}: {url!r} is not a URL with a host")
    try:
        socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UserError(f"{what}: cannot resolve host {host} ({exc.strerror or exc}); "
                        "check the network connection and the URL") from None


def transport_fault(exc: BaseException) -> bool:
    """A transient fault of the transfer itself (no HTTP status): refused, reset, timed out, truncated.

    For clients whose session already retries HTTP answers (429, 5xx), so that
    those are not retried a second time around it.
    """
    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    if status is not None or getattr(response, "status_code", None) is not None:
        return False
    return is_transient(exc)


def is_transient(exc: BaseException) -> bool:
    """Timeouts, connection errors, HTTP 429 and 5xx, and GDAL network/read errors."""
    import requests

    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)):
        return True
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return exc.response.status_code == 429 or exc.response.status_code >= 500
    if isinstance(exc, rasterio.errors.RasterioIOError):
        return True  # GDAL reports HTTP, curl and truncated-file errors all as RasterioIOError
    try:
        from pystac_client.exceptions import APIError

        if isinstance(exc, APIError):
            code = getattr(exc, "status_code", None)
            return code is None or code == 429 or code >= 500
    except ImportError:  # pragma: no cover
        pass
    cause = exc.__cause__ or getattr(exc, "request_exception", None)
    return cause is not None and cause is not exc and is_transient(cause)


def with_retries(fn: Callable[[int], T], policy: RetryPolicy, what: str,
                 transient: Callable[[BaseException], bool] = is_transient) -> T:
    """Call ``fn(attempt)`` until it succeeds, retrying transient failures with backoff."""
    for attempt in range(policy.attempts):
        try:
            return fn(attempt)
        except Exception as exc:
            if not transient(exc) or attempt == policy.attempts - 1:
                raise
            wait = policy.delay(attempt, getattr(exc, "retry_after", None))
            log.debug("%s: attempt %d failed (%s: %s); retrying in %.1f s", what, attempt + 1,
                      type(exc).__name__, exc, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


# ---------------------------------------------------------------- rasters
def gdal_env_options(timeout_s: float, attempts: int, backoff_s: float) -> dict:
    """GDAL options for reading COG windows over HTTP with range requests."""
    return {
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF",
        "GDAL_HTTP_TIMEOUT": str(max(1, int(round(timeout_s)))),
        "GDAL_HTTP_CONNECTTIMEOUT": str(max(1, int(round(timeout_s)))),
        # One retry layer: ours around each scene read (with_retries, which also retries
        # truncated reads and bypasses GDAL's cache on a retry), so GDAL's own is off.
        "GDAL_HTTP_MAX_RETRY": "0",
        "GDAL_HTTP_MULTIRANGE": "YES",
        "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
        "VSI_CACHE": "TRUE",
    }


def read_band_to_grid(ds, band_index: int, grid: Grid, resampling: Resampling) -> np.ndarray:
    """One band of an open dataset warped onto ``grid`` as float32 raw values, NaN where no source.

    GDAL's warper reads only the source blocks under the grid, so for a remote COG
    only those byte ranges are requested.
    """
    out = np.full((grid.height, grid.width), np.nan, dtype=np.float32)
    src_nodata = ds.nodatavals[band_index - 1]
    reproject(
        source=rasterio.band(ds, band_index), destination=out,
        src_transform=ds.transform, src_crs=ds.crs, src_nodata=src_nodata,
        dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=np.nan,
        resampling=resampling, init_dest_nodata=True,
    )
    return out


def read_scene_bands(scene: Scene, sensor: str, grid: Grid, *, env_options: dict | None = None,
                     href_signer: Callable[[str], str] | None = None) -> dict[str, np.ndarray]:
    """All bands of a scene on ``grid``, converted with each asset's scale/offset/nodata."""
    out: dict[str, np.ndarray] = {}
    open_cache: dict[str, rasterio.io.DatasetReader] = {}
    try:
        with rasterio.Env(**(env_options or {})):
            for name in SENSOR_BANDS[sensor]:
                asset = scene.bands.get(name)
                if asset is None:
                    raise ValueError(f"scene {scene.id} has no {name} band")
                href = href_signer(asset.href) if href_signer else asset.href
                if href not in open_cache:
                    open_cache[href] = rasterio.open(href)
                ds = open_cache[href]
                if asset.band_index > ds.count:
                    raise ValueError(f"{scene.id}: {name} is band {asset.band_index} but {href} has {ds.count}")
                resampling = Resampling.nearest if name in CATEGORICAL_BANDS else Resampling.bilinear
                raw = read_band_to_grid(ds, asset.band_index, grid, resampling)
                if asset.nodata is not None and not np.isnan(asset.nodata):
                    raw[raw == asset.nodata] = np.nan
                out[name] = raw if (asset.scale == 1.0 and asset.offset == 0.0) else \
                    (raw * np.float32(asset.scale) + np.float32(asset.offset)).astype(np.float32)
    finally:
        for ds in open_cache.values():
            ds.close()
    return out


def mosaic_first_valid(layers: list[dict[str, np.ndarray]], sensor: str) -> dict[str, np.ndarray]:
    """Per pixel, the first scene (in mosaic order) whose bands are all valid there."""
    names = SENSOR_BANDS[sensor]
    result = {n: layers[0][n].copy() for n in names}
    filled = np.all([np.isfinite(result[n]) for n in names], axis=0)
    for layer in layers[1:]:
        valid = np.all([np.isfinite(layer[n]) for n in names], axis=0) & ~filled
        for n in names:
            result[n][valid] = layer[n][valid]
        filled |= valid
    return result


class InvalidTileData(Exception):
    """Fetched data that must not become a tile."""


def check_bands(bands: dict[str, np.ndarray], sensor: str, grid: Grid) -> None:
    """Expected band names, the grid's shape, no infinities and at least one valid pixel."""
    want = SENSOR_BANDS[sensor]
    if set(bands) != set(want):
        raise InvalidTileData(f"bands {sorted(bands)} != expected {list(want)}")
    for n in want:
        a = bands[n]
        if a.shape != (grid.height, grid.width):
            raise InvalidTileData(f"band {n} shape {a.shape} != grid {(grid.height, grid.width)}")
        if np.isinf(a).any():
            raise InvalidTileData(f"band {n} has infinite values")
    if not any(np.isfinite(bands[n]).any() for n in want):
        raise InvalidTileData("no valid pixel over the AOI (all no data)")
