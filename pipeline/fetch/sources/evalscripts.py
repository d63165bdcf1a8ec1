"""Sentinel Hub evalscripts (V3) producing the tile contract's bands as FLOAT32.

Pixels without data (``dataMask == 0``) are returned as NaN, the tile's no-data value.
Bump :data:`EVALSCRIPT_VERSION` whenever a script changes: it is part of the fetch
manifest's parameters, so changed scripts refetch.
"""

from __future__ import annotations

from ...core.contracts import S1, S2, SENSOR_BANDS

EVALSCRIPT_VERSION = 1

#: Sentinel-2 L2A: bottom-of-atmosphere reflectance (units REFLECTANCE, 0-1; Sentinel Hub
#: already removes the -1000 DN BOA_ADD_OFFSET of processing baseline 04.00+) and the
#: scene classification as DN class codes.
S2_L2A = """//VERSION=3
function setup() {
  return {
    input: [{
      bands: ["B02", "B03", "B04", "B08", "B11", "SCL", "dataMask"],
      units: ["REFLECTANCE", "REFLECTANCE", "REFLECTANCE", "REFLECTANCE", "REFLECTANCE", "DN", "DN"]
    }],
    output: {id: "default", bands: 6, sampleType: "FLOAT32"}
  };
}
function evaluatePixel(s) {
  if (s.dataMask === 0) { return [NaN, NaN, NaN, NaN, NaN, NaN]; }
  return [s.B02, s.B03, s.B04, s.B08, s.B11, s.SCL];
}
"""

#: Sentinel-1 GRD IW: VV and VH backscatter in linear power; the coefficient and
#: orthorectification are chosen in the request's ``processing`` block.
S1_GRD = """//VERSION=3
function setup() {
  return {
    input: [{bands: ["VV", "VH", "dataMask"]}],
    output: {id: "default", bands: 2, sampleType: "FLOAT32"}
  };
}
function evaluatePixel(s) {
  if (s.dataMask === 0) { return [NaN, NaN]; }
  return [s.VV, s.VH];
}
"""

EVALSCRIPTS = {S2: S2_L2A, S1: S1_GRD}
#: Input bands counted for processing units (``dataMask`` is free).
INPUT_BANDS = {S2: 6, S1: 2}
OUTPUT_BANDS = {sensor: len(bands) for sensor, bands in SENSOR_BANDS.items()}
