"""A static STAC catalog on disk (the simulated sample, or imagery copied in for air-gapped use).

Items are recognised by the property ``berthwatch:sensor`` (or a collection id equal
to a sensor name: ``sentinel-2-l2a``, ``sentinel-1-grd``). Their pixels come from either

* an asset ``data``: one multi-band GeoTIFF whose bands are named (band descriptions,
  or ``eo:bands`` / ``berthwatch:bands`` of the asset) like the tile contract and hold
  its units (reflectance 0-1, sigma0 linear; ``raster:bands`` scale/offset applied if
  given); or
* one asset per band keyed by band id or common name (``B02``/``blue`` ..., ``VV``/``vv``),
  as Earth Search publishes them, converted like the ``stac`` source does.

Start and end dates are optional here: without them every date in the catalog is used.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio

from ...core.aoi import AOI, Grid
from ...core.contracts import S2, SENSOR_BANDS, validate_tile
from ...core.errors import UserError
from .common import BandAsset, RetryPolicy, Scene, TilePlan, in_range
from .stac import band_assets, fetch_scenes

log = logging.getLogger("berthwatch.fetch")


def default_catalog(data_dir: Path) -> Path:
    return Path(data_dir) / "sample" / "catalog.json"


def item_sensor(item) -> str | None:
    sensor = item.properties.get("berthwatch:sensor") or item.collection_id
    return sensor if sensor in SENSOR_BANDS else None


def _named_bands(asset_dict: dict) -> list[str] | None:
    for key in ("eo:bands", "berthwatch:bands", "raster:bands"):
        entries = asset_dict.get(key)
        if entries and all(isinstance(e, dict) and e.get("name") for e in entries):
            return [e["name"] for e in entries]
    return None


def data_asset_bands(href: str, asset_dict: dict, sensor: str) -> dict[str, BandAsset]:
    """Band positions inside a multi-band ``data`` asset, by name."""
    names = _named_bands(asset_dict)
    if names is None:
        with rasterio.open(href) as ds:
            names = list(ds.descriptions)
    rb = asset_dict.get("raster:bands") or []
    out = {}
    for name in SENSOR_BANDS[sensor]:
        if name in names:
            i = names.index(name)
            meta = rb[i] if i < len(rb) and isinstance(rb[i], dict) else {}
            nodata = meta.get("nodata")
            out[name] = BandAsset(href=href, band_index=i + 1, scale=float(meta.get("scale", 1.0)),
                                  offset=float(meta.get("offset", 0.0)),
                                  nodata=None if nodata in (None, "nan") else float(nodata))
    return out


def _asset_path(item, asset) -> str:
    """The asset's absolute href; a missing local file is looked for beside the item JSON.

    Tiles written with :func:`contracts.write_item` sit beside their item; catalogs whose
    asset links were rewritten against another item location still resolve.
    """
    href = asset.get_absolute_href()
    if href and "://" not in href and not os.path.exists(href) and item.get_self_href():
        beside = Path(item.get_self_href()).parent / Path(href).name
        if beside.exists():
            log.debug("item %s: asset %s not found; using %s beside the item", item.id, href, beside)
            return str(beside)
    return href


def _fingerprint(hrefs) -> list:
    fp = []
    for h in sorted(set(hrefs)):
        try:
            st = os.stat(h)
            fp.append([Path(h).name, st.st_size, st.st_mtime_ns])
        except OSError:
            fp.append([h, None, None])
    return fp


@dataclass
class LocalSource:
    catalog_path: Path
    max_cloud: float = 100.0
    policy: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=2, base_delay=0.5))
    name: str = "local"

    def __post_init__(self):
        import pystac

        path = Path(self.catalog_path)
        if not path.is_file():
            raise UserError(f"--catalog: {path}: no such STAC catalog (generate one with `berthwatch sample`)")
        try:
            self.catalog = pystac.Catalog.from_file(str(path))
        except Exception as exc:
            raise UserError(f"--catalog: {path}: not a readable STAC catalog ({exc})") from None
        self._items = None
        #: ``{item file: problem}`` of catalog items that cannot be read; the fetch stage
        #: reports them as failures (exit 1) and fetches the others.
        self.problems: dict[str, str] = {}

    def items(self) -> list:
        if self._items is None:
            self._items = list(self._walk(self.catalog))
        return self._items

    def _walk(self, catalog):
        """Items of ``catalog`` and its children; an unreadable item is recorded and skipped."""
        import pystac

        for link in catalog.get_links("item"):
            href = link.get_absolute_href()
            try:
                item = link.resolve_stac_object(root=self.catalog).target
                if not isinstance(item, pystac.Item):
                    raise TypeError(f"a {type(item).__name__}, not an Item")
                item.assets.items()  # a list or null 'assets' fails here, not halfway through a fetch
                if not all(isinstance(a, pystac.Asset) for a in item.assets.values()):
                    raise TypeError("'assets' must map keys to asset objects")
            except Exception as exc:  # null, [], missing fields, wrong kinds: pystac raises anything
                problem = f"{href}: not a readable STAC item ({type(exc).__name__}: {exc})"
                self.problems[f"catalog/items/{Path(str(href)).name}"] = problem  # in the fetch summary
                continue
            yield item
        for child_link in catalog.get_links("child"):
            try:
                child = child_link.resolve_stac_object(root=self.catalog).target
            except Exception as exc:
                problem = f"{child_link.get_absolute_href()}: not a readable STAC catalog ({exc})"
                self.problems[f"catalog/children/{Path(str(child_link.get_absolute_href())).name}"] = problem
                continue
            yield from self._walk(child)

    def processing(self, sensor: str) -> dict:
        p = {"catalog": self.catalog.id, "resolution_m": 10.0, "resampling": "bilinear (SCL nearest)",
             "mosaicking": "leastCC" if sensor == S2 else "mostRecent"}
        p.update({"units": "reflectance"} if sensor == S2 else {"backscatter": "as in the catalog (sigma0)"})
        return p

    def search(self, aoi: AOI, sensor: str, start: dt.date | None, end: dt.date | None) -> list[Scene]:
        from shapely.geometry import shape

        scenes = []
        for item in self.items():
            if item_sensor(item) != sensor or item.datetime is None:
                continue
            if item.geometry and not aoi.geometry.intersects(shape(item.geometry)):
                continue
            scene = self._scene(item, sensor)
            if scene is not None and in_range(scene.date, start, end):
                scenes.append(scene)
        return scenes

    def _scene(self, item, sensor: str) -> Scene | None:
        props = item.properties
        assets = {k: {**a.to_dict(), "href": _asset_path(item, a)} for k, a in item.assets.items()}
        if "data" in assets:
            bands = data_asset_bands(assets["data"]["href"], assets["data"], sensor)
        else:
            bands = band_assets(props, assets, sensor)
        missing = set(SENSOR_BANDS[sensor]) - set(bands)
        if missing:
            log.warning("catalog item %s lacks bands %s; skipped", item.id, sorted(missing))
            return None
        return Scene(id=item.id, datetime=item.datetime, platform=str(props.get("platform", "unknown")),
                     cloud_cover=props.get("eo:cloud_cover"), orbit_state=props.get("sat:orbit_state"),
                     simulated=bool(props.get("berthwatch:simulated", False)), bands=bands,
                     extra={"fingerprint": _fingerprint(b.href for b in bands.values())})

    def fetch(self, plan: TilePlan, grid: Grid) -> dict[str, np.ndarray]:
        return fetch_scenes(plan, grid, 30.0, self.policy)

    def conforming_file(self, plan: TilePlan, grid: Grid) -> Path | None:
        """The source file itself when it already is a contract tile on ``grid``.

        A catalog written by ``berthwatch sample`` (or by an earlier berthwatch run)
        holds tiles on the AOI grid with the contract's bands; copying their bytes is
        what re-encoding them would produce, at a fraction of the cost.
        """
        if len(plan.scenes) != 1:
            return None
        bands = plan.scenes[0].bands
        hrefs = {b.href for b in bands.values()}
        if len(hrefs) != 1 or any(b.scale != 1.0 or b.offset != 0.0 for b in bands.values()):
            return None
        path = Path(hrefs.pop())
        if not path.is_file():
            return None
        try:
            validate_tile(path, plan.sensor, grid)
        except UserError:
            return None
        return path


__all__ = ["LocalSource", "default_catalog"]
