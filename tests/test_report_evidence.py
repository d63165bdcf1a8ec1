"""The report lets a reader check it: images of every date, the vessel table, accuracy, data links, stamps."""

from __future__ import annotations

import html.parser
import io
import json
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from berthwatch.pipeline.core.contracts import find_tiles
from berthwatch.pipeline.report import accuracy
from berthwatch.pipeline.report.stamp import STAMP_RGB, png_is_stamped, stamp_png
from berthwatch.pipeline.report.thumbnails import db_greyscale, thumbnail_path, true_colour


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.srcs, self.rows = [], [], 0
        self._in_vessels = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        if tag == "img" and a.get("src"):
            self.srcs.append(a["src"])
        if tag == "table" and a.get("id") == "vessel-table":
            self._in_vessels = True
        if tag == "tr" and self._in_vessels:
            self.rows += 1

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_vessels = False


@pytest.fixture(scope="module")
def demo_report(demo_out):
    index = demo_out / "report" / "index.html"
    parser = _Links()
    parser.feed(index.read_text(encoding="utf-8"))
    return demo_out, index, parser


def test_every_image_of_every_date_is_in_the_contact_sheet(demo_report):
    out, index, links = demo_report
    tiles = find_tiles(out / "data")
    keys = {(t.aoi, t.date, t.sensor) for t in tiles}
    assert len(keys) > 40
    for aoi, date, sensor in keys:
        path = thumbnail_path(out / "report", aoi, date, sensor)
        assert path.is_file(), path  # the layout other tools link to
        rel = path.relative_to(out / "report").as_posix()
        assert rel in links.srcs and rel in links.hrefs
    assert len(list((out / "report" / "thumbnails").rglob("*.png"))) == len(keys)


def test_thumbnails_show_the_detections_and_say_simulated(demo_report):
    out, _, _ = demo_report
    det = json.loads((out / "detections" / "dunai" / "2023-10-06.geojson").read_text())
    assert any(f["properties"]["kind"] == "vessel" and f["properties"]["at_berth"] for f in det["features"])
    png = thumbnail_path(out / "report", "dunai", __import__("datetime").date(2023, 10, 6), "sentinel-2-l2a")
    img = Image.open(png)
    assert img.text["berthwatch:simulated"] == "true" and "SIMULATED" in img.text["Description"]
    rgb = np.asarray(img.convert("RGB")).astype(int)
    band = rgb[:10]
    assert (np.abs(band - STAMP_RGB).sum(axis=2) < 30).mean() > 0.5  # the visible red band
    at_berth = (np.abs(rgb[14:] - (239, 68, 68)).sum(axis=2) < 30).sum()
    assert at_berth > 20  # vessels at berth drawn in red


def test_every_report_png_is_stamped(demo_report):
    out, _, _ = demo_report
    pngs = list((out / "report").rglob("*.png"))
    assert len(pngs) > 40
    assert all(png_is_stamped(p.read_bytes()) for p in pngs), [p for p in pngs if not png_is_stamped(p.read_bytes())]


def test_stamp_only_for_simulated_input():
    buf = io.BytesIO()
    Image.new("RGB", (120, 80), (10, 120, 10)).save(buf, format="PNG")
    real = Image.open(io.BytesIO(stamp_png(buf.getvalue(), False)))
    sim = Image.open(io.BytesIO(stamp_png(buf.getvalue(), True)))
    assert real.size == (120, 80) and real.text["berthwatch:simulated"] == "false"
    assert sim.size[1] > 80 and sim.text["berthwatch:simulated"] == "true"


def test_image_renderings():
    vv = np.full((4, 4), 1e-3, np.float32)  # -30 dB: black
    vv[0, 0], vv[0, 1], vv[1, 1] = 1.0, 10 ** -1.25, np.nan  # 0 dB white, -12.5 dB mid grey, no data
    g = db_greyscale(vv)
    assert g[2, 2, 0] == 0 and g[0, 0, 0] == 255 and abs(int(g[0, 1, 0]) - 127) <= 1 and tuple(g[1, 1]) == (64, 64, 64)
    b = {"B04": np.linspace(0, 0.3, 100).reshape(10, 10), "B03": np.full((10, 10), 0.1),
         "B02": np.full((10, 10), 0.05)}
    tc = true_colour(b)
    assert tc.shape == (10, 10, 3) and tc[..., 0][-1, -1] > tc[..., 0][0, 0]


def test_vessel_table_has_every_vessel_with_position(demo_report):
    out, index, links = demo_report
    n = sum(1 for f in (out / "detections").glob("*/*.geojson")
            for x in json.loads(f.read_text())["features"] if x["properties"]["kind"] == "vessel")
    assert links.rows - 1 == n
    text = index.read_text(encoding="utf-8")
    assert "dunai-2023-10-06-vessel-1" in text


def test_links_resolve_to_the_data_files(demo_report):
    out, index, links = demo_report
    local = [h for h in links.hrefs if not h.startswith(("http", "#", "data:"))]
    assert any(h.endswith("timeseries.csv") for h in local) and any(h.endswith("detections.gpkg") for h in local)
    assert sum(h.endswith(".geojson") for h in local) >= 49 and any(h.endswith(".tif") for h in local)
    missing = [h for h in local if not (index.parent / unquote(h)).exists()]
    assert not missing, missing[:5]


def test_accuracy_names_the_datasets_and_what_they_mean(demo_report, tmp_path):
    out, index, _ = demo_report
    text = index.read_text(encoding="utf-8")
    assert "sen2ships" in text and "OpenSARShip" in text and "A count of N" in text
    rows = accuracy.load_accuracy(tmp_path)  # no run of validate here: the shipped record
    assert {r["name"] for r in rows} == {"sen2ships", "opensarship"}
    assert all(r["source"] and "record" in r["source"] for r in rows)
    (tmp_path / "sen2ships").mkdir()
    (tmp_path / "sen2ships" / "metrics.json").write_text(json.dumps(
        {"overall": {"precision": 0.8, "recall": 0.4, "f1": 0.53}, "scenes": {"a": {}}}))
    fresh = {r["name"]: r for r in accuracy.load_accuracy(tmp_path)}["sen2ships"]
    assert fresh["source"].endswith("metrics.json") and fresh["precision"] == 0.8
    assert "2.0 N" in fresh["meaning"]


def test_maps_draw_the_median_composite(demo_report):
    out, index, _ = demo_report
    text = index.read_text(encoding="utf-8")
    assert '"basemap":{"url":"data:image/png;base64,' in text
    m = np.asarray(Image.open(out / "report" / "map.png").convert("RGB")).astype(int)
    # Water of the composite (blue) fills much of the map panels, not a blank background.
    water = (m[..., 2] > m[..., 0] + 40) & (m[..., 2] > 80)
    assert water.mean() > 0.15


def _thumbnail_plan(demo_out, dest):
    """Every 8th thumbnail of the demo report, to be drawn into ``dest``; and what draws them."""
    import datetime as dt

    from berthwatch.pipeline.core.aoi import resolve_aois
    from berthwatch.pipeline.report.evidence import planned_thumbnails
    from berthwatch.pipeline.report.stage import detection_files, load_observations

    files = detection_files(demo_out, ["rajin", "dunai"], None, None)
    observations, features, _ = load_observations(files)
    aois = {a.id: a for a in resolve_aois(["rajin", "dunai"])}
    plan = planned_thumbnails([(f.parent.name, dt.date.fromisoformat(f.stem)) for f in files],
                              demo_out / "data", dest)[::8]
    assert len(plan) >= 6 and {s for *_, s, _, _ in plan} == {"sentinel-1-grd", "sentinel-2-l2a"}
    return plan, observations, features, aois


def test_thumbnails_drawn_in_threads_are_the_stage_images_in_contact_sheet_order(demo_out, tmp_path):
    """The report stage draws the thumbnails in two threads while the inference runs: a redraw in
    one thread gives the same bytes and the same contact sheet, in the same order."""
    from berthwatch.pipeline.report.analysis import AnalysisParams
    from berthwatch.pipeline.report.evidence import write_thumbnails

    plan, observations, features, aois = _thumbnail_plan(demo_out, tmp_path)
    entries = {}
    for threads in (1, 2):
        entries[threads] = write_thumbnails(plan, observations, features, aois, AnalysisParams(), tmp_path, threads)
        for aoi, date, sensor, _, path in plan:
            assert path.read_bytes() == thumbnail_path(demo_out / "report", aoi, date, sensor).read_bytes(), path
    assert entries[1] == entries[2] and [(e["aoi"], e["date"]) for e in entries[1]] == \
        [(aoi, date) for aoi, date, *_ in plan]


def test_a_rerun_redraws_only_the_thumbnails_whose_inputs_changed(demo_out, tmp_path, monkeypatch):
    """Over years of dates the contact sheet is most of the report's work: a rerun keeps every
    thumbnail whose tiles, detections, caption and drawing code are those it records."""
    from berthwatch.pipeline.report import evidence
    from berthwatch.pipeline.report.analysis import AnalysisParams

    plan, observations, features, aois = _thumbnail_plan(demo_out, tmp_path)
    drawn = []
    real = evidence.thumbnail_png
    monkeypatch.setattr(evidence, "thumbnail_png", lambda tiles, *a, **k: drawn.append(tiles[0].path) or real(tiles, *a, **k))

    from berthwatch.pipeline.core.manifest import Manifest

    manifest = Manifest(tmp_path, "thumbnails")

    def write(feats=features, code="code-1", force=False):
        drawn.clear()
        return evidence.write_thumbnails(plan, observations, feats, aois, AnalysisParams(), tmp_path,
                                         manifest=manifest, code=code, force=force)

    first = write()
    assert len(drawn) == len(first) == len(plan)
    before = {p: p.read_bytes() for *_, p in plan}
    assert write() == first and drawn == []
    assert {p: p.read_bytes() for *_, p in plan} == before
    # one date's detections change: only that date's image is redrawn
    aoi, date, _, tiles, path = next(x for x in plan if features.get((x[0], x[1])))
    changed = dict(features)
    changed[aoi, date] = features[aoi, date][1:]
    write(changed)
    assert drawn == [tiles[0].path] and path.read_bytes() != before[path]
    # new drawing code, or --force (no reuse): everything is redrawn
    write(changed, code="code-2")
    assert len(drawn) == len(plan)
    write(changed, code="code-2", force=True)
    assert len(drawn) == len(plan)
    # a thumbnail replaced since (a stray copy), or a damaged manifest: redrawn, not trusted
    path.write_bytes(b"not a png")
    write(changed, code="code-2")
    assert drawn == [tiles[0].path] and path.read_bytes().startswith(b"\x89PNG")
    manifest.save()
    manifest.path.write_text("{damaged")
    manifest = Manifest(tmp_path, "thumbnails")
    write(changed, code="code-2")
    assert len(drawn) == len(plan)
