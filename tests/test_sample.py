"""The SIMULATED sample generator: scenario validation, tile contract, catalog, truth, determinism."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pystac
import pytest

from berthwatch.pipeline.core.aoi import available_aois
from berthwatch.pipeline.core.contracts import S1, S2, SCENE_ID, read_tile, tile_checksum_ok, validate_tile
from berthwatch.pipeline.core.errors import UserError
from berthwatch.pipeline.simulation.layout import M2_PER_TEU
from berthwatch.pipeline.simulation.sample import generate_sample
from berthwatch.pipeline.simulation.scenario import load_scenario, resolve_scenario

SCENARIOS = Path(__file__).parent / "scenarios"
D = dt.date.fromisoformat


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("quick")
    generate_sample(SCENARIOS / "quick.yaml", out)
    return out


@pytest.fixture(scope="module")
def cloudy(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cloudy")
    generate_sample(SCENARIOS / "cloudy-quiet.yaml", out)
    return out


def _items(data_dir: Path) -> list[pystac.Item]:
    return list(pystac.Catalog.from_file(str(data_dir / "catalog.json")).get_items(recursive=True))


def _truth(data_dir: Path, aoi: str, date: str) -> dict:
    return json.loads((data_dir / "truth" / aoi / f"{date}.geojson").read_text())


# ------------------------------------------------------------------ catalog and tiles
def test_catalog_opens_and_every_tile_meets_the_contract(quick):
    sc = load_scenario(SCENARIOS / "quick.yaml")
    catalog = pystac.Catalog.from_file(str(quick / "catalog.json"))
    assert "SIMULATED" in catalog.description
    items = _items(quick)
    expected = {(a, s, d) for a in sc.aois for s, d, _ in sc.acquisitions(a)}
    assert {(i.properties["berthwatch:aoi"], i.properties["berthwatch:sensor"], i.datetime.date()) for i in items} == expected
    aois = available_aois()
    for item in items:
        props = item.properties
        assert SCENE_ID.match(item.id) and item.id.startswith("SIM_")
        assert props["berthwatch:simulated"] is True and props["berthwatch:scenario"] == "quick"
        assert props["platform"].startswith("sentinel-1" if props["berthwatch:sensor"] == S1 else "sentinel-2")
        tif = Path(item.assets["data"].get_absolute_href())
        assert tif.is_relative_to(quick / "items")
        grid = aois[props["berthwatch:aoi"]].grid()
        validate_tile(tif, props["berthwatch:sensor"], grid)
        assert tile_checksum_ok(tif)
        assert props["proj:code"] == f"EPSG:{grid.crs.to_epsg()}"


def test_acquisition_times_follow_the_orbits(quick):
    times = {(i.properties["berthwatch:aoi"], i.properties["berthwatch:sensor"]): i.datetime.time() for i in _items(quick)}
    assert times[("rajin", S2)] == dt.time(2, 21) and times[("dunai", S2)] == dt.time(2, 11)
    assert times[("rajin", S1)] == dt.time(9, 10)


def test_pixels_are_physical(quick):
    for item in _items(quick):
        bands, _ = read_tile(Path(item.assets["data"].get_absolute_href()))
        if item.properties["berthwatch:sensor"] == S2:
            refl = np.stack([bands[b] for b in ("B02", "B03", "B04", "B08", "B11")])
            finite = refl[np.isfinite(refl)]
            assert finite.min() > 0 and finite.max() < 1.2
            assert set(np.unique(bands["SCL"])) <= {0.0, 3.0, 4.0, 5.0, 6.0, 8.0, 9.0, 10.0}
            assert (bands["SCL"] == 6).mean() > 0.2  # the sea is classified water
        else:
            vv, vh = bands["VV"], bands["VH"]
            assert (vv > 0).all() and (vh > 0).all()
            # Speckle: sea clutter follows a gamma law of ENL about 4.4 (mean^2 / var).
            sea = vv[-60:, -60:] if item.properties["berthwatch:aoi"] == "rajin" else vv[:60, :60]
            enl = sea.mean() ** 2 / sea.var()
            assert 2.5 < enl < 6.0
            assert np.median(vh) < np.median(vv)


def test_vessel_at_berth_is_visible_in_both_sensors(quick):
    """Angara (120 m) alongside pier-2 on 2023-09-06: brighter than the sea in NIR and in SAR."""
    import shapely
    from pyproj import Transformer
    from rasterio import features
    from shapely.geometry import shape

    truth = _truth(quick, "rajin", "2023-09-06")
    angara = next(f for f in truth["features"] if f["properties"].get("name") == "Angara")
    assert angara["properties"]["at_berth"] and angara["properties"]["berth"].startswith("pier-2")
    grid = available_aois()["rajin"].grid()
    to_utm = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True)
    hull = shapely.transform(shape(angara["geometry"]), lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])))
    core = features.rasterize([(hull.buffer(-4.0), 1)], out_shape=(grid.height, grid.width),
                              transform=grid.transform, all_touched=True).astype(bool)
    sea = features.rasterize([(hull.buffer(150.0).difference(hull.buffer(40.0)), 1)], out_shape=core.shape,
                             transform=grid.transform).astype(bool)
    for item in _items(quick):
        if item.properties["berthwatch:aoi"] != "rajin" or item.datetime.date() != D("2023-09-06"):
            continue
        bands, _ = read_tile(Path(item.assets["data"].get_absolute_href()))
        if item.properties["berthwatch:sensor"] == S1:
            water = sea & (bands["VH"] < np.percentile(bands["VH"][sea], 60))
            assert 10 * np.log10(bands["VV"][core].max() / bands["VV"][water].mean()) > 10.0


def test_truth_follows_the_scenario(quick):
    t = _truth(quick, "rajin", "2023-09-04")
    assert t["simulated"] is True and "SIMULATED" in t["notice"]
    vessels = [f["properties"] for f in t["features"] if f["properties"]["kind"] == "vessel"]
    angara = next(v for v in vessels if v["name"] == "Angara")
    assert angara["berth"].startswith("pier-1") and angara["length_m"] == 120 and angara["at_berth"]
    assert t["large_vessels_at_berth"] == 1
    stacks = {f["properties"]["yard"]: f["properties"] for f in t["features"] if f["properties"]["kind"] == "container_stack"}
    assert stacks["yard-1"]["teu"] == 900 + 300  # layout baseline + the 2023-09-04 event
    assert stacks["yard-1"]["area_m2"] == pytest.approx(stacks["yard-1"]["teu"] * M2_PER_TEU, rel=1e-3)
    # Departure day: the containers are on deck; the move put the ship at pier-2.
    dep = _truth(quick, "rajin", "2023-09-06")
    angara = next(f["properties"] for f in dep["features"] if f["properties"].get("name") == "Angara")
    assert angara["berth"].startswith("pier-2") and angara["deck_teu"] == 300
    assert any(f["properties"].get("on_vessel") for f in dep["features"])
    # Maria is not at Dunai before she arrives.
    before = _truth(quick, "dunai", "2023-09-06")
    assert not any(f["properties"].get("name") == "Maria" for f in before["features"])
    events = json.loads((quick / "truth" / "events.json").read_text())
    assert events["simulated"] is True and len(events["port_calls"]) == 2 and len(events["yard_events"]) == 3


def test_cloudy_window_and_quiet_aoi(cloudy):
    for item in _items(cloudy):
        aoi, sensor = item.properties["berthwatch:aoi"], item.properties["berthwatch:sensor"]
        bands, _ = read_tile(Path(item.assets["data"].get_absolute_href()))
        if sensor == S2 and aoi == "rajin":
            assert item.properties["eo:cloud_cover"] > 5.0
            assert np.isin(bands["SCL"], (8, 9)).any()
        if sensor == S2 and aoi == "dunai":
            assert item.properties["eo:cloud_cover"] == 0.0
    for truth_file in (cloudy / "truth" / "rajin").glob("*.geojson"):
        t = json.loads(truth_file.read_text())
        if "sentinel-2-l2a" in t["sensors"]:
            assert t["clear_s2"] is False and t["cloud_fraction"] > 0.05
    teu = set()
    for truth_file in (cloudy / "truth" / "dunai").glob("*.geojson"):
        t = json.loads(truth_file.read_text())
        assert t["large_vessels_at_berth"] == 0
        assert not [f for f in t["features"] if f["properties"]["kind"] == "vessel"]
        teu.add(t["yard_teu"])
    assert len(teu) == 1


def test_generation_is_deterministic_and_independent_of_workers(tmp_path):
    a = generate_sample(SCENARIOS / "tiny.yaml", tmp_path / "a", workers=1).parent
    b = generate_sample(SCENARIOS / "tiny.yaml", tmp_path / "b", workers=2).parent
    tifs = sorted((a / "items").rglob("*.tif"))
    assert len(tifs) == 2
    for ta in tifs:
        tb = b / ta.relative_to(a)
        ba, _ = read_tile(ta)
        bb, _ = read_tile(tb)
        for k in ba:
            np.testing.assert_array_equal(ba[k], bb[k])
    for ta in sorted((a / "truth").rglob("*")):
        if ta.is_file():
            assert ta.read_bytes() == (b / ta.relative_to(a)).read_bytes()
    # Another seed gives another scene.
    other = (SCENARIOS / "tiny.yaml").read_text().replace("seed: 5", "seed: 6")
    (tmp_path / "tiny6.yaml").write_text(other)
    c = generate_sample(tmp_path / "tiny6.yaml", tmp_path / "c", workers=1).parent
    ba, _ = read_tile(tifs[0])
    bc, _ = read_tile(c / tifs[0].relative_to(a))
    assert not np.array_equal(ba[next(iter(ba))], bc[next(iter(bc))])


def test_refuses_a_folder_that_is_not_a_sample(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(UserError, match="precious.txt"):
        generate_sample(SCENARIOS / "tiny.yaml", tmp_path)
    assert (tmp_path / "precious.txt").exists()


# ------------------------------------------------------------------ scenario validation
def test_shipped_scenario_loads():
    sc = resolve_scenario(None)
    assert sc.name == "orient-express-2023" and sc.aois == ("rajin", "dunai")
    assert {pc.vessel for pc in sc.port_calls} >= {"Angara", "Maria", "Lady R"}
    maria = sorted((pc for pc in sc.port_calls if pc.vessel == "Maria"), key=lambda pc: pc.arrive)
    assert maria[0].arrive == D("2023-09-12")  # RUSI: joined on 12 September
    assert any(pc.aoi == "dunai" and pc.on(D("2023-10-14")) for pc in maria)  # RUSI Fig. 5
    shipped = sum(pc.deck_teu_out for pc in sc.port_calls
                  if pc.aoi == "rajin" and D("2023-09-07") <= pc.depart <= D("2023-10-01"))
    assert shipped > 1000  # the claim's "more than 1,000 containers" in the window


BASE = (SCENARIOS / "quick.yaml").read_text()


@pytest.mark.parametrize("old,new,field", [
    ("seed: 3\n", "", "seed"),
    ("seed: 3", "seed: three", "seed"),
    ("layout: default", "layout: default\ncolour: red", "colour"),
    ("start: 2023-09-01", "start: 2023-13-01", "start"),
    ("aois: [rajin, dunai]", "aois: [rajin, atlantis]", "aois[1]"),
    ("depart: 2023-09-06", "depart: 2023-09-01", "port_calls[0].depart"),
    ("berth: pier-1,", "berth: pier-9,", "port_calls[0].berth"),
    ("length_m: 110", "length_m: 900", "port_calls[1].length_m"),
    ("{date: 2023-09-05, berth: pier-2}", "{date: 2023-10-05, berth: pier-2}", "port_calls[0].moves[0].date"),
    ("teu: -300}", "teu: -9000}", "yard_events[1].teu"),
    ("yard: yard-1,", "yard: yard-7,", "yard_events[0].yard"),
    ("every_days: 5,", "every_days: 0,", "acquisitions.sentinel-2-l2a.every_days"),
    ("cloud_probability: 0.0}", "cloud_probability: 1.5}", "acquisitions.sentinel-2-l2a.cloud_probability"),
])
def test_scenario_errors_are_one_line_naming_file_and_field(tmp_path, old, new, field):
    assert old in BASE
    path = tmp_path / "bad.yaml"
    path.write_text(BASE.replace(old, new, 1))
    with pytest.raises(UserError) as err:
        load_scenario(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}: ") and f": {field}" in msg


def test_double_booked_berth_is_an_error(tmp_path):
    path = tmp_path / "clash.yaml"
    clash = ("  - {vessel: Maria, length_m: 110, beam_m: 17, aoi: rajin, arrive: 2023-09-04, depart: 2023-09-05,"
             " berth: pier-1}\n  - {vessel: Ob, length_m: 100, beam_m: 16, aoi: rajin, arrive: 2023-09-04,"
             " depart: 2023-09-04, berth: pier-1}\n")
    path.write_text(BASE.replace("yard_events:", clash + "yard_events:"))
    with pytest.raises(UserError, match=r"port_calls\[3\]: no free berth pier-1"):
        load_scenario(path)


def test_cli_reports_a_bad_scenario_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from berthwatch.pipeline.cli import app

    path = tmp_path / "bad.yaml"
    path.write_text(BASE.replace("seed: 3", "seed: -1"))
    result = CliRunner().invoke(app, ["sample", "--scenario", str(path), "--data-dir", str(tmp_path / "out")])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "seed" in lines[0] and "bad.yaml" in lines[0]
