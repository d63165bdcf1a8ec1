"""``<data>/catalog.json``: a static STAC Catalog of the fetched tiles, one Collection per AOI and sensor.

Written (and brought up to date) at the end of every fetch from the tiles and
items on disk, so STAC Browser, QGIS's STAC plugin and ``pystac`` open
``<data>/`` directly::

    <data>/catalog.json                                  Catalog  -> child links
    <data>/tiles/<aoi>/<sensor>/collection.json          Collection per AOI and sensor -> item links
    <data>/tiles/<aoi>/<sensor>/<date>/<scene>.json      the tiles' Items (written by fetch)

Links are relative (the folder can be moved or served). The Collections carry
the spatial extent (the union of their items' bounding boxes), the temporal
extent (first and last acquisition), the summaries of platforms and the
extensions their items use. Each file is rewritten only when its content
changes, atomically; collections whose tiles are all gone are removed.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path

from ..core.atomic import write_text_atomic
from ..core.contracts import S1, S2, find_tiles, read_item
from ..core.errors import UserError

log = logging.getLogger(__name__)

STAC_VERSION = "1.1.0"
CATALOG_FILE = "catalog.json"
COLLECTION_FILE = "collection.json"
SENSOR_TITLE = {S2: "Sentinel-2 L2A surface reflectance", S1: "Sentinel-1 GRD IW backscatter (linear power)"}
LICENSE_LINK = {"rel": "license", "href": "https://sentinels.copernicus.eu/documents/247904/690755/Sentinel_Data_Legal_Notice",
                "title": "Legal notice on the use of Copernicus Sentinel Data and Service Information"}


def _dump(obj: dict) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def _write_if_changed(path: Path, obj: dict) -> bool:
    text = _dump(obj)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    write_text_atomic(path, text)
    return True


def collection_id(aoi: str, sensor: str) -> str:
    return f"{aoi}-{sensor}"


def build_collection(aoi: str, sensor: str, items: list[tuple[Path, dict]], coll_dir: Path) -> dict:
    """The Collection dict of one AOI and sensor from its items (``(item path, item dict)``)."""
    boxes = [it["bbox"] for _, it in items if it.get("bbox")]
    times = sorted(it["properties"].get("datetime") for _, it in items if it["properties"].get("datetime"))
    simulated = any(it["properties"].get("berthwatch:simulated") for _, it in items)
    exts = sorted({e for _, it in items for e in it.get("stac_extensions", [])})
    platforms = sorted({it["properties"].get("platform") for _, it in items if it["properties"].get("platform")})
    title = f"{aoi}: {SENSOR_TITLE.get(sensor, sensor)}" + (" (SIMULATED)" if simulated else "")
    links = [{"rel": "root", "href": Path("..", "..", "..", CATALOG_FILE).as_posix(), "type": "application/json"},
             {"rel": "parent", "href": Path("..", "..", "..", CATALOG_FILE).as_posix(), "type": "application/json"},
             LICENSE_LINK]
    for path, it in sorted(items, key=lambda x: (x[1]["properties"].get("datetime") or "", x[0].name)):
        links.append({"rel": "item", "href": "./" + path.relative_to(coll_dir).as_posix(),
                      "type": "application/geo+json", "title": it.get("id")})
    return {
        "type": "Collection", "stac_version": STAC_VERSION, "stac_extensions": [],
        "id": collection_id(aoi, sensor), "title": title,
        "description": f"Tiles of the AOI {aoi} on its UTM grid at 10 m, fetched by berthwatch"
                       + ("; SIMULATED imagery, not Sentinel data." if simulated else "."),
        "license": "other",
        "keywords": ["berthwatch", sensor, aoi],
        "extent": {
            "spatial": {"bbox": [[min(b[0] for b in boxes), min(b[1] for b in boxes),
                                  max(b[2] for b in boxes), max(b[3] for b in boxes)]] if boxes else [[-180, -90, 180, 90]]},
            "temporal": {"interval": [[times[0], times[-1]] if times else [None, None]]},
        },
        "summaries": {"platform": platforms, "berthwatch:item_extensions": exts},
        "links": links,
    }


def write_catalog(data_dir: Path) -> Path | None:
    """Write or update ``<data>/catalog.json`` and the Collections; None when there is no tile."""
    data_dir = Path(data_dir)
    groups: dict[tuple[str, str], list[tuple[Path, dict]]] = defaultdict(list)
    for t in find_tiles(data_dir):
        try:
            groups[(t.aoi, t.sensor)].append((t.item, read_item(t.path)))
        except UserError as exc:
            log.warning("catalog leaves out %s", exc)
    root = data_dir / CATALOG_FILE
    tiles = data_dir / "tiles"
    for old in tiles.glob(f"*/*/{COLLECTION_FILE}") if tiles.is_dir() else []:
        if (old.parent.parent.name, old.parent.name) not in groups:
            old.unlink()
    if not groups:
        return None
    children = []
    for (aoi, sensor), items in sorted(groups.items()):
        coll_dir = tiles / aoi / sensor
        coll = build_collection(aoi, sensor, items, coll_dir)
        _write_if_changed(coll_dir / COLLECTION_FILE, coll)
        children.append({"rel": "child", "href": "./" + (coll_dir / COLLECTION_FILE).relative_to(data_dir).as_posix(),
                         "type": "application/json", "title": coll["title"]})
    catalog = {"type": "Catalog", "stac_version": STAC_VERSION, "stac_extensions": [], "id": "berthwatch-tiles",
               "title": "berthwatch tiles", "description": "Tiles fetched by berthwatch, one collection per AOI "
                                                           "and sensor (open in STAC Browser or QGIS).",
               "links": [{"rel": "root", "href": f"./{CATALOG_FILE}", "type": "application/json"}, *children]}
    _write_if_changed(root, catalog)
    return root
