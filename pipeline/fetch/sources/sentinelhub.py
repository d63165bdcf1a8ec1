"""Sentinel Hub / Copernicus Data Space Ecosystem source (Catalog API + Process API).

Credentials come from the standard sentinelhub-py configuration: a profile in
``~/.config/sentinelhub/config.toml`` (selected with ``SH_PROFILE``) or the
``SH_CLIENT_ID`` / ``SH_CLIENT_SECRET`` environment variables. ``endpoint='cdse'``
switches to the Copernicus Data Space Ecosystem deployment (free accounts);
``endpoint='sentinelhub'`` uses whatever URLs the profile holds (default
services.sentinel-hub.com).

Retries are sentinelhub-py's own: timeouts, connection errors, truncated bodies and
5xx are retried ``max_download_attempts`` times with ``download_sleep_time`` growing
x3; 429 responses wait for the ``Retry-After`` header, which Sentinel Hub sends in
*milliseconds* and the library reads as such, up to ``max_retries`` times (set here
so throttling can never loop forever). On top, a response that is not a complete
GeoTIFF of the requested size is re-requested (:class:`~.common.TransientError`).

Sentinel-1 processing: ``backCoeff=SIGMA0_ELLIPSOID`` because the tile contract and
the SAR detectors (CFAR on sea clutter) work on calibrated sigma0, the standard
backscatter of ESA GRD calibration; ``GAMMA0_TERRAIN`` would flatten the slopes
around the harbour but changes ship/sea contrast statistics, and the ports are at
sea level. ``orthorectify=true`` with the Copernicus 30 m DEM so that quays from S1
line up with S2 and the AOI zones (range-Doppler geocoding without a DEM shifts
hillside and pier pixels by tens of metres). Speckle filtering is left off: the
detectors model speckle themselves.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.io import MemoryFile

from ...core.aoi import AOI, MAX_REQUEST_PX, Grid
from ...core.contracts import S1, S2, SENSOR_BANDS
from ...core.errors import UserError
from . import evalscripts
from .common import RetryPolicy, Scene, TilePlan, TransientError, resolve_host, with_retries

log = logging.getLogger("berthwatch.fetch")

CDSE_BASE_URL = "https://sh.dataspace.copernicus.eu"
CDSE_TOKEN_URL = "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"
ENDPOINTS = ("sentinelhub", "cdse")
ORBITS = ("ascending", "descending")
S1_PROCESSING = {"backCoeff": "SIGMA0_ELLIPSOID", "orthorectify": True, "demInstance": "COPERNICUS_30",
                 "speckleFilter": {"type": "NONE"}}
MOSAICKING = {S2: "leastCC", S1: "mostRecent"}
#: Bound on consecutive 429 answers for one request before giving up.
MAX_THROTTLED_RETRIES = 20
CREDENTIALS_HELP = ("set SH_CLIENT_ID and SH_CLIENT_SECRET (an OAuth client from the Sentinel Hub or, with "
                    "--endpoint cdse, the Copernicus Data Space dashboard) or a sentinelhub config profile "
                    "(SH_PROFILE)")

# Loggers that write OAuth request bodies and tokens at DEBUG level.
_SECRET_LOGGERS = ("requests_oauthlib", "oauthlib", "urllib3", "sentinelhub.download.session")


def quiet_secret_loggers() -> None:
    for name in _SECRET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def make_config(endpoint: str):
    """The SHConfig from the user's profile/environment, pointed at ``endpoint``."""
    from sentinelhub import SHConfig

    if endpoint not in ENDPOINTS:
        raise UserError(f"--endpoint: unknown endpoint {endpoint!r}; choose from {', '.join(ENDPOINTS)}")
    try:
        config = SHConfig()
    except KeyError as exc:  # unknown SH_PROFILE
        raise UserError(f"sentinelhub configuration: {exc.args[0]}") from None
    if endpoint == "cdse":
        config.sh_base_url = CDSE_BASE_URL
        config.sh_token_url = CDSE_TOKEN_URL
    if config.max_retries is None:
        config.max_retries = MAX_THROTTLED_RETRIES
    if not (config.sh_client_id and config.sh_client_secret):
        raise UserError(f"Sentinel Hub credentials missing: {CREDENTIALS_HELP}")
    return config


def _define_collection(base, name_prefix: str, base_url: str):
    """A data collection bound to ``base_url`` (required for CDSE and any non-default deployment).

    sentinelhub-py refuses a second enum member with the definition of an existing
    one, and its predefined collections are already bound to the default deployment
    (services.sentinel-hub.com): there, and wherever an identical collection was
    defined before, the existing member is reused.
    """
    from sentinelhub import DataCollection

    wanted = base.value.derive(service_url=base_url)
    for existing in DataCollection:
        if existing.value == wanted:
            return existing
    name = f"BERTHWATCH_{name_prefix}_{hashlib.sha1(base_url.encode()).hexdigest()[:10]}"
    return base.define_from(name, service_url=base_url)


def estimate_processing_units(sensor: str, grid: Grid) -> float:
    """Processing units of the Process API requests for one tile.

    Sentinel Hub's rules: area factor = output pixels / 512^2 (minimum 0.01);
    input-band factor = bands / 3 (``dataMask`` free); FLOAT32 output x2;
    Sentinel-1 orthorectification x2; one data sample per pixel (mosaicked);
    minimum 0.005 PU per request.
    """
    total = 0.0
    for _, _, part in grid.split(MAX_REQUEST_PX):
        pu = max(part.width * part.height / 512.0 ** 2, 0.01)
        pu *= evalscripts.INPUT_BANDS[sensor] / 3.0
        pu *= 2.0  # FLOAT32 output
        if sensor == S1 and S1_PROCESSING["orthorectify"]:
            pu *= 2.0
        total += max(pu, 0.005)
    return total


@dataclass
class SentinelHubSource:
    """Catalog search and Process API download through sentinelhub-py."""

    config: object
    endpoint: str = "sentinelhub"
    max_cloud: float = 80.0
    orbit: str | None = None
    name: str = "sentinelhub"

    def __post_init__(self):
        from sentinelhub import DataCollection

        if self.orbit is not None and self.orbit not in ORBITS:
            raise UserError(f"--orbit: {self.orbit!r} must be one of {', '.join(ORBITS)}")
        base_url = self.config.sh_base_url.rstrip("/")
        s1 = {None: DataCollection.SENTINEL1_IW, "ascending": DataCollection.SENTINEL1_IW_ASC,
              "descending": DataCollection.SENTINEL1_IW_DES}[self.orbit]
        self.collections = {
            S2: _define_collection(DataCollection.SENTINEL2_L2A, "S2L2A", base_url),
            S1: _define_collection(s1, f"S1IW_{self.orbit or 'ANY'}", base_url),
        }
        self._session_checked = False

    # ------------------------------------------------------------ credentials
    def check_credentials(self) -> None:
        """Obtain an OAuth token once; turn a rejection into one actionable line."""
        from oauthlib.oauth2.rfc6749.errors import OAuth2Error
        from sentinelhub import SentinelHubDownloadClient
        from sentinelhub.exceptions import DownloadFailedException

        if self._session_checked:
            return
        resolve_host(self.config.sh_token_url, "Sentinel Hub token service")
        resolve_host(self.config.sh_base_url, "Sentinel Hub API")
        try:
            SentinelHubDownloadClient(config=self.config).get_session()
        except OAuth2Error as exc:
            if exc.error == "insecure_transport":
                raise UserError(f"Sentinel Hub token URL {self.config.sh_token_url} must use https") from None
            raise UserError(f"Sentinel Hub credentials rejected by {self.config.sh_token_url} "
                            f"({exc.error}); {CREDENTIALS_HELP}") from None
        except DownloadFailedException as exc:
            status = _status(exc)
            if status in (400, 401, 403):
                raise UserError(f"Sentinel Hub credentials rejected by {self.config.sh_token_url} "
                                f"(HTTP {status}); {CREDENTIALS_HELP}") from None
            raise UserError(f"cannot reach the Sentinel Hub token service {self.config.sh_token_url} "
                            f"({_short(exc)})") from None
        self._session_checked = True

    # ------------------------------------------------------------ search
    def processing(self, sensor: str) -> dict:
        p = {"endpoint": self.config.sh_base_url.rstrip("/"), "collection": self.collections[sensor].api_id,
             "evalscript_version": evalscripts.EVALSCRIPT_VERSION, "mosaicking": MOSAICKING[sensor],
             "resolution_m": 10.0}
        if sensor == S1:
            p.update(S1_PROCESSING, backscatter="sigma0", orbit=self.orbit or "any",
                     polarization="DV", mode="IW")
        else:
            p.update(units="reflectance", max_cloud=self.max_cloud, boa_offset_applied=True)
        return p

    def search(self, aoi: AOI, sensor: str, start: dt.date | None, end: dt.date | None) -> list[Scene]:
        from sentinelhub import CRS, BBox, SentinelHubCatalog

        if start is None or end is None:
            raise UserError("--start and --end are required for --source sentinelhub")
        self.check_credentials()
        catalog = SentinelHubCatalog(config=self.config)
        bbox = BBox(aoi.geometry.bounds, crs=CRS.WGS84)
        flt = f"eo:cloud_cover <= {self.max_cloud:g}" if sensor == S2 else None
        time_range = (dt.datetime.combine(start, dt.time.min), dt.datetime.combine(end, dt.time.max))
        try:
            features = list(catalog.search(self.collections[sensor], bbox=bbox, time=time_range, filter=flt,
                                           limit=100))
        except Exception as exc:
            self._raise_if_auth(exc)
            raise
        scenes = []
        for f in features:
            if not intersects_or_unknown(aoi, _shape(f.get("geometry"))):
                continue
            props = f.get("properties", {})
            when = dt.datetime.fromisoformat(props["datetime"].replace("Z", "+00:00"))
            cc = props.get("eo:cloud_cover")
            if sensor == S2 and cc is not None and cc > self.max_cloud:
                continue
            orbit = props.get("sat:orbit_state")
            if sensor == S1 and self.orbit and orbit and orbit.lower() != self.orbit:
                continue
            scenes.append(Scene(id=f["id"], datetime=when, platform=_platform(f["id"], props), cloud_cover=cc,
                                orbit_state=orbit))
        return scenes

    # ------------------------------------------------------------ download
    def fetch(self, plan: TilePlan, grid: Grid, policy: RetryPolicy | None = None) -> dict[str, np.ndarray]:
        policy = policy or RetryPolicy(attempts=3, base_delay=self.config.download_sleep_time)
        names = SENSOR_BANDS[plan.sensor]
        full = np.full((len(names), grid.height, grid.width), np.nan, dtype=np.float32)
        for row, col, part in grid.split(MAX_REQUEST_PX):
            # HTTP-level retries are the library's; here only a response that did not decode is retried.
            data = with_retries(lambda _a: self._request_part(plan, part), policy, f"{plan.key} process",
                                transient=lambda exc: isinstance(exc, TransientError))
            full[:, row:row + part.height, col:col + part.width] = data
        return {n: full[i] for i, n in enumerate(names)}

    def _request_part(self, plan: TilePlan, part: Grid) -> np.ndarray:
        from sentinelhub import CRS, BBox, MimeType, MosaickingOrder, SentinelHubDownloadClient, SentinelHubRequest
        from sentinelhub.exceptions import DownloadFailedException

        sensor = plan.sensor
        day_start = dt.datetime.combine(plan.date, dt.time.min)
        day_end = dt.datetime.combine(plan.date, dt.time(23, 59, 59))
        other = {"processing": dict(S1_PROCESSING)} if sensor == S1 else None
        input_data = SentinelHubRequest.input_data(
            self.collections[sensor], time_interval=(day_start, day_end),
            maxcc=self.max_cloud / 100.0 if sensor == S2 else None,
            mosaicking_order=MosaickingOrder(MOSAICKING[sensor]), other_args=other)
        request = SentinelHubRequest(
            evalscript=evalscripts.EVALSCRIPTS[sensor], input_data=[input_data],
            responses=[SentinelHubRequest.output_response("default", MimeType.TIFF)],
            bbox=BBox(part.bounds, crs=CRS(part.crs.to_epsg())), size=(part.width, part.height),
            config=self.config)
        client = SentinelHubDownloadClient(config=self.config)
        try:
            (response,) = client.download(request.download_list, max_threads=1, decode_data=False)
        except DownloadFailedException as exc:
            self._raise_if_auth(exc)
            raise
        return decode_tiff(response.content, len(SENSOR_BANDS[sensor]), part)

    def _raise_if_auth(self, exc: Exception) -> None:
        if _status(exc) in (401, 403):
            raise UserError(f"Sentinel Hub rejected the request (HTTP {_status(exc)}): check the account "
                            f"and {CREDENTIALS_HELP}") from None


def decode_tiff(content: bytes, bands: int, grid: Grid) -> np.ndarray:
    """A Process API GeoTIFF as ``(bands, height, width)`` float32; TransientError if incomplete."""
    try:
        with MemoryFile(content) as mem, mem.open() as ds:
            if ds.count != bands or (ds.width, ds.height) != (grid.width, grid.height):
                raise TransientError(f"response has {ds.count} bands {ds.width}x{ds.height}, "
                                     f"expected {bands} bands {grid.width}x{grid.height}")
            data = ds.read().astype(np.float32, copy=False)
    except rasterio.errors.RasterioIOError as exc:
        raise TransientError(f"response is not a readable GeoTIFF ({len(content)} bytes: {exc})") from None
    return data


def _status(exc: BaseException) -> int | None:
    req = getattr(exc, "request_exception", None) or exc.__cause__
    resp = getattr(req, "response", None)
    return getattr(resp, "status_code", None)


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def _shape(geom):
    from shapely.geometry import shape

    return shape(geom) if geom else None


def _platform(product_id: str, props: dict) -> str:
    if props.get("platform"):
        return str(props["platform"])
    prefix = product_id[:3].upper()
    return {"S2A": "sentinel-2a", "S2B": "sentinel-2b", "S2C": "sentinel-2c", "S1A": "sentinel-1a",
            "S1B": "sentinel-1b", "S1C": "sentinel-1c"}.get(prefix, "unknown")


def intersects_or_unknown(aoi: AOI, geom) -> bool:
    return geom is None or aoi.geometry.intersects(geom)

