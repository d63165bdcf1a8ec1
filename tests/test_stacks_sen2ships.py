"""Container-stack detector on real Sentinel-2 port scenes (sen2ships).

Container-yard outlines for durban, algiers, gdynia, athens (Piraeus),
casablanca and cartagena were drawn by hand on the true-colour bands
(tests/data/terminals_sen2ships.geojson, EPSG:3857); hedland (iron ore) and
honolulu (Pearl Harbor) have no container yard. One parameter set (the
defaults) for all ports. The labelled vessel boxes of the dataset
(vessels.json) are used to separate stacks on ship decks (container ships
alongside carry real stacks) from false alarms ashore.

Measured with the defaults: inside share of detected area (of the area off
labelled vessels) / coverage of the outlined yards / stack area per km2 of
non-yard land (off vessels):
durban 0.70 (0.72) / 0.51 / 5000 (4500), gdynia 0.44 (0.51) / 0.18 / 5300
(4000), algiers 0.59 (0.60) / 0.11 / 1200 (1200), casablanca 0.74 (0.75) /
0.41 / 35700 (33400), athens 0.22 (0.23) / 0.47 / 36100 (35500), cartagena
0.51 / 0.40 / 10500, hedland - / - / 290, honolulu - / - / 0.
The outlines were checked on zoomed overlays: they follow the quay edges and
the ships alongside lie outside them. Algiers and cartagena are hazy: their
darkest water and land are 0.04-0.05 (algiers) and 0.07-0.1 (cartagena) in
every band up to B11, a spectrally neutral veil that the detector measures
over the water and subtracts (before the correction algiers was 0.09 / 0.03
/ 7100, its yard's relative colour texture below the seed threshold, and
cartagena 0.36 / 0.12 / 5700). The other scenes get no correction. Dense
flat-roofed city blocks (athens, casablanca) and shipyards by the water
(gdynia) are the main false alarms. The thresholds below guard these
numbers against regressions; they are not the target.
"""

from pathlib import Path

import numpy as np
import pytest

from berthwatch.detectors.stacks import detect_container_stacks
from berthwatch.pipeline.validation.stacks_overlay import (
    load_sen2ships_port,
    load_terminals,
    port_stats,
    terminal_mask,
    vessel_box_mask,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "sen2ships"
PORTS = ("durban", "algiers", "gdynia", "athens", "casablanca", "hedland")

pytestmark = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"sen2ships dataset not found at {DATA} (../shared/datasets beside the repo)"
)


@pytest.fixture(scope="module")
def results():
    terminals = load_terminals()
    out = {}
    for port in PORTS:
        bands, transform = load_sen2ships_port(DATA / port)
        _, stats = detect_container_stacks(bands, transform)
        pixel_area = abs(transform.a * transform.e)
        tmask = terminal_mask(terminals.get(port, []), stats["stack_mask"].shape, transform)
        red, nir = bands["B04"], bands["B08"]
        ndvi = (nir - red) / (nir + red + 1e-6)
        res = port_stats(stats, bands, tmask, pixel_area, vessel_box_mask(DATA / port, tmask.shape))
        res["on_vegetation_m2"] = float((stats["stack_mask"] & (ndvi > 0.3)).sum() * pixel_area)
        out[port] = res
    return out


def test_reflectance_scaling_is_65535():
    bands, _ = load_sen2ships_port(DATA / "durban")
    # Clear water is dark in NIR; vegetation reflects 0.3-0.5 in NIR.
    assert np.percentile(bands["B08"], 1) < 0.01
    assert 0.3 < np.percentile(bands["B08"], 99) < 0.6


def test_yards_are_found(results):
    # Well-imaged yards: a substantial share of the outlined yard area.
    assert results["durban"]["terminal_coverage"] > 0.35
    assert results["athens"]["terminal_coverage"] > 0.25
    assert results["casablanca"]["terminal_coverage"] > 0.2
    assert results["gdynia"]["terminal_coverage"] > 0.08


def test_detections_concentrate_in_yards(results):
    # Yards are ~1 % of the land in these scenes; detected area is 20-65 %
    # inside them, i.e. 20-60 times denser than chance.
    for port in ("durban", "casablanca"):
        assert results[port]["inside_share"] > 0.55, port
    for port in ("gdynia", "athens"):
        assert results[port]["inside_share"] > 0.15, port
    for port in ("durban", "casablanca"):
        assert results[port]["inside_share_ashore"] > 0.65, port
    # Hazy algiers, after the haze-veil correction (0.09 without it).
    assert results["algiers"]["terminal_coverage"] > 0.05


def test_most_stack_area_ashore_lies_inside_the_terminals(results):
    # Issue #8's check on the three outlined container ports. Deck stacks of the labelled ships
    # alongside are real stacks, not false alarms, so the share is taken off them ("ashore").
    # Measured: durban 0.72, algiers 0.60, gdynia 0.51 (0.45 before the quay-apron rule, apron_m;
    # its remaining false alarms are shipyard hulls and the outer piers).
    for port in ("durban", "algiers", "gdynia"):
        assert results[port]["inside_share_ashore"] > 0.5, port


def test_false_positive_bound_on_other_land(results):
    for port in ("durban", "gdynia", "algiers", "hedland"):
        # <= 0.8 % of the non-yard land of the scene flagged as stacks.
        assert results[port]["outside_m2_per_km2_other_land"] < 8000, port
        # Measured 290-4,500 m2/km2 off the labelled vessels: <= 0.7 % of the other land.
        assert results[port]["outside_m2_per_km2_other_land_ashore"] < 7000, port
    assert results["algiers"]["outside_m2_per_km2_other_land_ashore"] < 3000  # 1,200 (5,700 before the haze correction)


def test_no_stacks_on_open_water_or_vegetation(results):
    for port, r in results.items():
        # Some stack pixels fall on berthed hulls (NDWI > 0 at the hull edge).
        assert r["on_water_m2"] <= 0.15 * max(r["stack_area_m2"], 1.0), port
        assert r["on_vegetation_m2"] <= 0.06 * max(r["stack_area_m2"], 1.0), port
