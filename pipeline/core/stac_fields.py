"""STAC Item fields that tools understand: the eo, sar, proj, file and view extensions.

:func:`item_fields` returns, for one tile, the extension schema URIs, the
properties and the asset fields that :func:`.contracts.write_item` writes:

* ``eo`` (v1.1.0): ``eo:bands`` of the Sentinel-2 asset with common names,
  centre wavelengths and bandwidths (Sentinel-2A MSI, ESA), and
  ``eo:cloud_cover``: the share (%) of the tile's observed pixels that the L2A
  scene classification calls cloud (SCL 8, 9, 10: medium, high probability,
  thin cirrus), i.e. over the AOI, not the whole granule;
* ``sar`` (v1.0.0): C band at 5.405 GHz, IW mode, GRD, VV+VH;
* ``proj`` (v2.0.0): code, shape, transform and bbox of the AOI's UTM grid;
* ``file`` (v2.1.0): SHA-256 multihash and size of the tile;
* ``view`` (v1.0.0): the sun's azimuth and elevation at the acquisition time
  over the tile centre (:func:`sun_position`), which sets where shadows fall
  in Sentinel-2 (and says nothing for radar, which brings its own light).

Band descriptions and units are written both in the items (``description``,
``unit`` of each band entry) and in the GeoTIFFs (:func:`.contracts.write_tile`).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

EXTENSIONS = {
    "eo": "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "sar": "https://stac-extensions.github.io/sar/v1.0.0/schema.json",
    "proj": "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "file": "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "view": "https://stac-extensions.github.io/view/v1.0.0/schema.json",
}
#: Sentinel-2 bands of a tile: common name, centre wavelength and FWHM (micrometres, S2A MSI).
S2_EO_BANDS = {
    "B02": ("blue", 0.490, 0.098), "B03": ("green", 0.560, 0.045), "B04": ("red", 0.665, 0.038),
    "B08": ("nir", 0.842, 0.145), "B11": ("swir16", 1.610, 0.143),
}
S2_UNIT = "surface reflectance (0-1, L2A, BOA)"
SCL_DESCRIPTION = "L2A scene classification (SCL) class code stored as float: 0 no data ... 11 snow"
S1_UNIT = "sigma0 (or gamma0, see berthwatch:processing) in linear power; dB = 10 * log10(value)"
CLOUD_SCL = (8.0, 9.0, 10.0)


def band_entries(sensor_bands: tuple[str, ...], is_s2: bool) -> list[dict]:
    """Band entries with name, description and unit (and eo fields for Sentinel-2)."""
    out = []
    for b in sensor_bands:
        if is_s2 and b in S2_EO_BANDS:
            common, centre, fwhm = S2_EO_BANDS[b]
            out.append({"name": b, "common_name": common, "center_wavelength": centre,
                        "full_width_half_max": fwhm, "description": f"{common} ({centre:.3f} um)", "unit": S2_UNIT})
        elif is_s2:
            out.append({"name": b, "description": SCL_DESCRIPTION, "unit": "class"})
        else:
            out.append({"name": b, "description": f"{b} polarisation backscatter", "unit": S1_UNIT})
    return out


def cloud_cover_percent(scl: np.ndarray) -> float | None:
    """Share (%) of observed pixels (SCL > 0) that are cloud (SCL 8, 9, 10); None with none observed."""
    observed = np.isfinite(scl) & (scl > 0)
    n = int(observed.sum())
    if not n:
        return None
    return round(100.0 * float(np.isin(scl[observed], CLOUD_SCL).sum()) / n, 2)


def sun_position(when: dt.datetime, lon: float, lat: float) -> tuple[float, float]:
    """Solar azimuth (degrees clockwise from north) and elevation (degrees) at a time and place.

    NOAA's general solar position equations (fractional-year Fourier series
    for the equation of time and declination, Spencer 1971), accurate to
    about 0.5 degree, without refraction.
    """
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    doy = when.timetuple().tm_yday
    hour = when.hour + when.minute / 60 + when.second / 3600
    g = 2 * math.pi / 365 * (doy - 1 + (hour - 12) / 24)
    eqtime = 229.18 * (0.000075 + 0.001868 * math.cos(g) - 0.032077 * math.sin(g)
                       - 0.014615 * math.cos(2 * g) - 0.040849 * math.sin(2 * g))
    decl = (0.006918 - 0.399912 * math.cos(g) + 0.070257 * math.sin(g) - 0.006758 * math.cos(2 * g)
            + 0.000907 * math.sin(2 * g) - 0.002697 * math.cos(3 * g) + 0.00148 * math.sin(3 * g))
    true_solar_min = hour * 60 + eqtime + 4 * lon
    ha = math.radians(true_solar_min / 4 - 180)
    phi = math.radians(lat)
    cos_zen = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha)
    zen = math.acos(max(-1.0, min(1.0, cos_zen)))
    az = math.degrees(math.atan2(math.sin(ha), math.cos(ha) * math.sin(phi) - math.tan(decl) * math.cos(phi))) + 180
    return round(az % 360, 2), round(90 - math.degrees(zen), 2)


def item_fields(sensor_is_s2: bool, bands: tuple[str, ...], when: dt.datetime, centre_lonlat: tuple[float, float],
                scl: np.ndarray | None = None) -> tuple[list[str], dict, dict]:
    """(stac_extensions, properties, asset fields) of a tile's item, beyond proj and file."""
    az, el = sun_position(when, *centre_lonlat)
    props: dict = {"view:sun_azimuth": az, "view:sun_elevation": el}
    entries = band_entries(bands, sensor_is_s2)
    if sensor_is_s2:
        exts = ["eo", "proj", "file", "view"]
        if scl is not None and (cc := cloud_cover_percent(scl)) is not None:
            props["eo:cloud_cover"] = cc
        asset = {"eo:bands": entries}
    else:
        exts = ["sar", "proj", "file", "view"]
        props.update({"sar:instrument_mode": "IW", "sar:frequency_band": "C", "sar:center_frequency": 5.405,
                      "sar:polarizations": [b for b in bands if b in ("VV", "VH", "HH", "HV")],
                      "sar:product_type": "GRD"})
        asset = {"berthwatch:bands": entries}
    return [EXTENSIONS[e] for e in exts], props, asset
