"""Sentinel-1 products as they come: dual VV+VH, single VV, dual HH+HV, single HH, in detect and validate."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio

from tile_factory import harbour, s1_bands, write_scene

from berthwatch.pipeline.core.aoi import available_aois
from berthwatch.pipeline.core.contracts import S1, polarisation_bands, timeseries_path
from berthwatch.pipeline.core.errors import UserError
from berthwatch.pipeline.core.geojson_io import read_detections
from berthwatch.pipeline.core.options import RunOptions
from berthwatch.pipeline.detect import run_detect

DATES = [dt.date(2023, 9, 1), dt.date(2023, 9, 7)]
POLARISATIONS = {"VV+VH": ("VV", "VH"), "VV": ("VV",), "HH+HV": ("HH", "HV"), "HH": ("HH",)}
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "opensarship"


def _as_product(bands: dict, names: tuple[str, ...]) -> dict:
    """A dual VV+VH image as the product with ``names`` (HH/HV carry the co/cross-pol values)."""
    co, cross = bands["VV"], bands["VH"]
    return {names[0]: co, **({names[1]: cross} if len(names) == 2 else {})}


@pytest.mark.parametrize("label", list(POLARISATIONS))
def test_detect_uses_every_polarisation_and_says_which(tmp_path, label):
    aoi = available_aois()["rajin"]
    grid = aoi.grid()
    hb = harbour(grid)
    ship = hb.anchored_ship()
    for i, day in enumerate(DATES):
        write_scene(tmp_path / "data", aoi.id, grid, S1, day, f"S1_{day:%Y%m%d}",
                    _as_product(s1_bands(grid, hb, [ship], seed=i), POLARISATIONS[label]))
    opts = RunOptions(aois=[aoi], sensors=(S1,), data_dir=tmp_path / "data", out_dir=tmp_path / "out",
                      extra={"workers": 1})
    assert run_detect(opts) == 0
    for day in DATES:
        summary, feats = read_detections(tmp_path / "out" / "detections" / aoi.id / f"{day}.geojson")
        assert summary["s1_polarisations"] == label
        assert summary["vessels"] >= 1  # the anchored ship, from the co-pol channel at least
    with open(timeseries_path(tmp_path / "out"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[-1] == "s1_polarisations" and {r["s1_polarisations"] for r in rows} == {label}


def test_polarisation_bands_of_every_product():
    assert polarisation_bands({"VV": 0, "VH": 0}) == ("VV", "VH")
    assert polarisation_bands({"VV": 0}) == ("VV", None)
    assert polarisation_bands({"HH": 0, "HV": 0}) == ("HH", "HV")
    assert polarisation_bands({"HH": 0}) == ("HH", None)
    with pytest.raises(ValueError):
        polarisation_bands({"VH": 0})


def _chips(tmp_path: Path, product: str, names: tuple[str, ...], n: int = 6) -> Path:
    """The first ``n`` chips of a real dual-pol scene, rewritten as the product ``product``."""
    scene = sorted(d for d in DATA.iterdir() if (d / "Patch_Cal").is_dir())[0]
    target = tmp_path / "ds" / scene.name.replace("_1SDV_", f"_1{product}_")
    (target / "Patch_Cal").mkdir(parents=True)
    shutil.copy(scene / "Ship.xml", target / "Ship.xml")
    for chip in sorted((scene / "Patch_Cal").glob("*.tif"))[:n]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(chip) as src:
                vh, vv = src.read(1), src.read(2)
                profile = src.profile
        data = np.stack([vh, vv] if len(names) == 2 else [vv])
        profile.update(count=len(data))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(target / "Patch_Cal" / chip.name, "w", **profile) as dst:
                dst.write(data)
    return tmp_path / "ds"


@pytest.mark.parametrize("product,names,label", [("SDV", ("VH", "VV"), "VV+VH"), ("SSV", ("VV",), "VV"),
                                                  ("SDH", ("HV", "HH"), "HH+HV"), ("SSH", ("HH",), "HH")])
def test_validate_opensarship_reads_every_product(tmp_path, product, names, label):
    if not (DATA.is_dir() and any(DATA.glob("*/Patch_Cal"))):
        pytest.skip(f"OpenSARShip data not found at {DATA}")
    from berthwatch.pipeline.validation.opensarship import validate_opensarship

    metrics = validate_opensarship(_chips(tmp_path, product, names), tmp_path / "out")
    assert metrics["overall"]["polarisations"] == [label]
    assert metrics["overall"]["chips"] == 6 and metrics["overall"]["recall"] >= 0.8
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["overall"]["polarisations"] == [label]


def test_validate_opensarship_refuses_a_single_band_chip_of_a_dual_pol_product(tmp_path):
    if not (DATA.is_dir() and any(DATA.glob("*/Patch_Cal"))):
        pytest.skip(f"OpenSARShip data not found at {DATA}")
    from berthwatch.pipeline.validation.opensarship import validate_opensarship

    ds = _chips(tmp_path, "SSV", ("VV",), n=2)
    scene = next(ds.iterdir())
    scene.rename(scene.with_name(scene.name.replace("_1SSV_", "_1SDV_")))
    with pytest.raises(UserError, match=r"1 band\(s\), but the product holds VH\+VV"):
        validate_opensarship(ds, tmp_path / "out")
    assert not (tmp_path / "out").exists()
