"""Public STAC APIs, no credentials: Earth Search (Sentinel-2 L2A) and Planetary Computer (Sentinel-1 RTC).

Only the AOI window of each Cloud-Optimized GeoTIFF is read (GDAL ``/vsicurl/`` range
requests), warped onto the AOI grid and converted to the tile contract.

Differences from the Sentinel Hub tiles, recorded in each STAC item's ``processing``:

* Sentinel-2 L2A reflectance = DN x 1/10000 + offset. The offset comes from the asset's
  ``raster:bands`` when the catalog publishes it (Earth Search: -0.1 for processing
  baseline 04.00+); otherwise it is -1000 DN (``BOA_ADD_OFFSET``) for baselines >= 04.00
  unless ``earthsearch:boa_offset_applied`` says it was already removed. DN 0 = no data.
* Sentinel-1 from Planetary Computer is the ``sentinel-1-rtc`` product: radiometrically
  terrain-corrected **gamma0** (terrain-flattened, linear power), not sigma0-ellipsoid.
  Over flat water and quays gamma0_T ~ sigma0 / cos(local incidence), i.e. 1.2-2x
  (+1 to +3 dB) higher across the IW swath; absolute thresholds in dB differ, CFAR
  detections (relative to local clutter) much less. Planetary Computer's
  ``sentinel-1-grd`` holds uncalibrated amplitude DN in radar geometry and is not used.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from urllib.parse import urlparse

import numpy as np
import pystac

from ...core.aoi import AOI, Grid
from ...core.contracts import S1, S2, SENSOR_BANDS
from ...core.errors import UserError
from .common import (
    BandAsset, RetryPolicy, Scene, TilePlan, gdal_env_options, in_range, mosaic_first_valid, read_scene_bands,
    resolve_host, transport_fault, with_retries,
)

log = logging.getLogger("berthwatch.fetch")

EARTH_SEARCH = "https://earth-search.aws.element84.com/v1"
PLANETARY_COMPUTER = "https://planetarycomputer.microsoft.com/api/stac/v1"
DEFAULT_APIS = {S2: EARTH_SEARCH, S1: PLANETARY_COMPUTER}
COLLECTIONS = {S2: "sentinel-2-l2a", S1: "sentinel-1-rtc"}
#: Asset keys of each contract band, as named by Earth Search (common names) and others (band ids).
ASSET_KEYS = {
    "B02": ("B02", "blue"), "B03": ("B03", "green"), "B04": ("B04", "red"), "B08": ("B08", "nir"),
    "B11": ("B11", "swir16"), "SCL": ("SCL", "scl"), "VV": ("VV", "vv"), "VH": ("VH", "vh"),
}
REFLECTANCE_SCALE = 1e-4
BOA_ADD_OFFSET_DN = -1000.0


def is_planetary_computer(url: str) -> bool:
    return urlparse(url).hostname == "planetarycomputer.microsoft.com"


def _baseline(props: dict) -> float | None:
    for key in ("s2:processing_baseline", "processing:version", "sentinel:processing_baseline"):
        try:
            return float(props[key])
        except (KeyError, TypeError, ValueError):
            continue
    return None


def band_assets(item_props: dict, assets: dict, sensor: str, href_of=lambda a: a["href"]) -> dict[str, BandAsset]:
    """Contract bands of an item from per-band assets (keyed by band id or common name)."""
    out = {}
    for name in SENSOR_BANDS[sensor]:
        key = next((k for k in ASSET_KEYS[name] if k in assets), None)
        if key is None:
            continue
        asset = assets[key]
        rb = (asset.get("raster:bands") or [{}])[0]
        nodata = rb.get("nodata", asset.get("nodata"))
        if sensor == S2 and name != "SCL":
            if "scale" in rb or "offset" in rb:
                scale, offset = float(rb.get("scale", 1.0)), float(rb.get("offset", 0.0))
            else:
                baseline = _baseline(item_props)
                shifted = baseline is not None and baseline >= 4.0 and not item_props.get(
                    "earthsearch:boa_offset_applied", False)
                scale, offset = REFLECTANCE_SCALE, (BOA_ADD_OFFSET_DN * REFLECTANCE_SCALE if shifted else 0.0)
            nodata = 0.0 if nodata is None else nodata
        elif name == "SCL":
            scale, offset, nodata = 1.0, 0.0, 0.0 if nodata is None else nodata
        else:
            scale, offset = float(rb.get("scale", 1.0)), float(rb.get("offset", 0.0))
        out[name] = BandAsset(href=href_of(asset), band_index=1, scale=scale, offset=offset,
                              nodata=None if nodata is None else float(nodata))
    return out


@dataclass
class StacSource:
    api_url: str | None = None
    max_cloud: float = 80.0
    orbit: str | None = None
    timeout_s: float = 60.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    name: str = "stac"

    def __post_init__(self):
        self._clients: dict[str, object] = {}
        #: ``{"<aoi>/<sensor>/item-<n>": problem}`` of search results that are not STAC items
        #: (null, a list, ``assets`` not an object); the fetch stage reports them as failures.
        self.problems: dict[str, str] = {}

    def api_for(self, sensor: str) -> str:
        return (self.api_url or DEFAULT_APIS[sensor]).rstrip("/")

    def processing(self, sensor: str) -> dict:
        p = {"api": self.api_for(sensor), "collection": COLLECTIONS[sensor], "resolution_m": 10.0,
             "resampling": "bilinear (SCL nearest)", "mosaicking": "leastCC" if sensor == S2 else "mostRecent"}
        if sensor == S2:
            p.update(units="reflectance", scale=REFLECTANCE_SCALE,
                     offset="raster:bands, else -1000 DN for processing baseline >= 04.00",
                     max_cloud=self.max_cloud)
        else:
            p.update(backscatter="gamma0-terrain (RTC), not sigma0", orbit=self.orbit or "any")
        return p

    def _client(self, url: str):
        if url not in self._clients:
            from pystac_client import Client
            from pystac_client.stac_api_io import StacApiIO
            from urllib3 import Retry

            # One retry layer per kind of fault, never two stacked: answers (429 with
            # Retry-After, 5xx) are retried by urllib3 in the client's session; broken,
            # refused or truncated transfers, which urllib3 cannot retry once the body is
            # being read, by ours (transport_fault); a host that does not resolve by
            # nobody (resolve_host fails at once).
            retry = Retry(total=self.policy.attempts - 1, connect=0, read=0, other=0,
                          status=self.policy.attempts - 1, backoff_factor=self.policy.base_delay / 2,
                          status_forcelist=(429, 500, 502, 503, 504), allowed_methods=None,
                          respect_retry_after_header=True, raise_on_status=False)
            io = StacApiIO(timeout=self.timeout_s, max_retries=retry)
            what = "--stac-api" if self.api_url else "STAC API (default)"
            resolve_host(url, what)
            try:
                self._clients[url] = with_retries(lambda _a: Client.open(url, stac_io=io), self.policy,
                                                  f"open {url}", transient=transport_fault)
            except Exception as exc:
                raise UserError(f"{what}: cannot open STAC API {url} ({' '.join(str(exc).split())[:200]})") \
                    from None
        return self._clients[url]

    def search(self, aoi: AOI, sensor: str, start: dt.date | None, end: dt.date | None) -> list[Scene]:
        url = self.api_for(sensor)
        client = self._client(url)
        query = {}
        if sensor == S2:
            query["eo:cloud_cover"] = {"lte": self.max_cloud}
        if sensor == S1 and self.orbit:
            query["sat:orbit_state"] = {"eq": self.orbit}
        when = None
        if start or end:
            when = f"{start.isoformat() if start else '..'}/{end.isoformat() + 'T23:59:59Z' if end else '..'}"

        def run(_attempt):
            search = client.search(collections=[COLLECTIONS[sensor]], intersects=aoi.geometry.__geo_interface__,
                                   datetime=when, query=query or None, limit=100)
            return list(search.items_as_dicts())

        items = []
        for i, raw in enumerate(with_retries(run, self.policy, f"{aoi.id} {sensor} search",
                                                    transient=transport_fault)):
            try:  # one malformed result is that result's failure, not the search's
                if not isinstance(raw, dict) or not isinstance(raw.get("assets"), dict):
                    raise TypeError(f"a STAC item must be an object with an 'assets' object, got {raw!r:.60}")
                items.append(pystac.Item.from_dict(raw))
            except Exception as exc:
                name = raw.get("id") if isinstance(raw, dict) else None
                self.problems[f"{aoi.id}/{sensor}/item-{i}"] = (
                    f"{url}/search result {i}{f' ({name})' if name else ''}: not a STAC item "
                    f"({type(exc).__name__}: {exc})")
        return [s for s in (self._scene(it, sensor, aoi) for it in items) if s is not None and in_range(s.date, start, end)]

    def _scene(self, item, sensor: str, aoi: AOI) -> Scene | None:
        from shapely.geometry import shape

        props = item.properties
        if item.geometry and not aoi.geometry.intersects(shape(item.geometry)):
            return None
        cc = props.get("eo:cloud_cover")
        if sensor == S2 and cc is not None and cc > self.max_cloud:
            return None
        orbit = props.get("sat:orbit_state")
        if sensor == S1 and self.orbit and orbit and orbit.lower() != self.orbit:
            return None
        assets = {k: a.to_dict() for k, a in item.assets.items()}
        bands = band_assets(props, assets, sensor, href_of=lambda a: a["href"])
        if set(bands) != set(SENSOR_BANDS[sensor]):
            log.warning("%s: item %s lacks bands %s; skipped", aoi.id, item.id,
                        sorted(set(SENSOR_BANDS[sensor]) - set(bands)))
            return None
        return Scene(id=item.id, datetime=item.datetime, platform=str(props.get("platform", "unknown")),
                     cloud_cover=cc, orbit_state=orbit, simulated=bool(props.get("berthwatch:simulated", False)),
                     bands=bands)

    def _signer(self, sensor: str):
        if not is_planetary_computer(self.api_for(sensor)):
            return None
        try:
            import planetary_computer
        except ImportError:
            raise UserError("reading Planetary Computer assets needs the planetary-computer package: "
                            "pip install 'berthwatch[stac]'") from None
        return planetary_computer.sign

    def fetch(self, plan: TilePlan, grid: Grid) -> dict[str, np.ndarray]:
        return fetch_scenes(plan, grid, self.timeout_s, self.policy, self._signer(plan.sensor))


def fetch_scenes(plan: TilePlan, grid: Grid, timeout_s: float, policy: RetryPolicy, signer=None) -> dict:
    """Read each scene of the plan onto the grid (in mosaic order) and mosaic them."""
    env = gdal_env_options(timeout_s, policy.attempts, policy.base_delay)
    layers = []
    covered = np.zeros((grid.height, grid.width), dtype=bool)
    for scene in plan.scenes:
        def read(attempt, scene=scene):
            opts = dict(env)
            if attempt:  # a retry must not be served bytes GDAL cached from the failed attempt
                opts["CPL_VSIL_CURL_NON_CACHED"] = ":".join(
                    f"/vsicurl/{b.href}" for b in scene.bands.values())
            return read_scene_bands(scene, plan.sensor, grid, env_options=opts, href_signer=signer)

        layer = with_retries(read, policy, f"{plan.key} {scene.id}")
        layers.append(layer)
        covered |= np.all([np.isfinite(layer[n]) for n in SENSOR_BANDS[plan.sensor]], axis=0)
        if covered.all():
            break
    return mosaic_first_valid(layers, plan.sensor)
