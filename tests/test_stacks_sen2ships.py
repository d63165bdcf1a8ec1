"""Container-stack detector on real Sentinel-2 port scenes (sen2ships).

Container-yard outlines for durban, algiers, gdynia, athens (Piraeus),
casablanca and cartagena were drawn by hand on the true-colour bands
(tests/data/terminals_sen2ships.geojson, EPSG:3857); hedland (iron ore) and
honolulu (Pearl Harbor) have no container yard. One parameter set (the
defaults) for all ports. Measured with the defaults (inside share of detected
area / coverage of the outlined yards / stack area per km2 of non-yard land):
durban 0.67 / 0.52 / 5700, gdynia 0.38 / 0.18 / 6800, algiers 0.07 / 0.03
(hazy) / 7100, casablanca 0.70 / 0.37 / 40000, athens 0.22 / 0.45 / 36000,
cartagena 0.36 / 0.12 (hazy) / 5700, hedland - / - / 420, honolulu - / - / 0. Dense flat-roofed city blocks and shipyards by the water are the main
false alarms. The thresholds below guard these numbers against regressions;
they are not the target.
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
        res = port_stats(stats, bands, tmask, pixel_area)
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


def test_false_positive_bound_on_other_land(results):
    for port in ("durban", "gdynia", "algiers", "hedland"):
        # <= 0.8 % of the non-yard land of the scene flagged as stacks.
        assert results[port]["outside_m2_per_km2_other_land"] < 8000, port


def test_no_stacks_on_open_water_or_vegetation(results):
    for port, r in results.items():
        # Some stack pixels fall on berthed hulls (NDWI > 0 at the hull edge).
        assert r["on_water_m2"] <= 0.15 * max(r["stack_area_m2"], 1.0), port
        assert r["on_vegetation_m2"] <= 0.06 * max(r["stack_area_m2"], 1.0), port
