"""measure_objects and flag_at_berth work on a few pixels; they must give the full-image answers."""

import numpy as np
from affine import Affine
from scipy import ndimage
from shapely.geometry import box

from berthwatch.detectors.berth import flag_at_berth
from berthwatch.detectors.measure import measure_objects
from berthwatch.detectors.records import Vessel

TRANSFORM = Affine(10.0, 0.0, 279380.0, 0.0, -10.0, 4753810.0)


def _random_labels(seed, shape=(90, 120)):
    rng = np.random.default_rng(seed)
    labels, n = ndimage.label(rng.random(shape) < 0.08)
    return labels, n


def test_measure_objects_centroids_and_areas_match_full_image_statistics():
    for seed in range(5):
        labels, n = _random_labels(seed)
        labels[labels == 2] = 0  # a gap in the numbering is skipped
        objects = measure_objects(labels, TRANSFORM)
        present = [lab for lab in range(1, n + 1) if (labels == lab).any()]
        assert [o["label"] for o in objects] == present
        centres = ndimage.center_of_mass(np.ones_like(labels), labels, present)
        for o, (r, c) in zip(objects, centres):
            mask = labels == o["label"]
            assert o["n_pixels"] == mask.sum()
            assert o["area_m2"] == mask.sum() * 100.0
            assert (o["row"], o["col"]) == (r, c)
            assert (o["x"], o["y"]) == TRANSFORM @ (c + 0.5, r + 0.5)
            # The outline is the union of the object's pixel squares, in CRS units.
            assert abs(o["outline"].area - o["area_m2"]) < 1e-6
            rows, cols = np.nonzero(mask)
            x0, y1 = TRANSFORM @ (cols.min(), rows.min())
            x1, y0 = TRANSFORM @ (cols.max() + 1, rows.max() + 1)
            assert o["outline"].bounds == (x0, y0, x1, y1)


def test_measure_objects_without_objects():
    assert measure_objects(np.zeros((5, 5), int), TRANSFORM) == []
    assert measure_objects(-np.ones((5, 5), int), TRANSFORM) == []


def test_distance_to_land_is_the_full_distance_transform_at_the_outline():
    rng = np.random.default_rng(7)
    h, w = 80, 100
    land = np.zeros((h, w), bool)
    land[:, :20] = True
    land[rng.random((h, w)) < 0.002] = True  # isolated land pixels (buoys, piers)
    full = np.maximum(ndimage.distance_transform_edt(~land) * 10.0 - 5.0, 0.0)
    vessels = []
    for _ in range(30):
        r, c = int(rng.integers(0, h - 3)), int(rng.integers(0, w - 8))
        x0, y1 = TRANSFORM @ (c, r)
        x1, y0 = TRANSFORM @ (c + 8, r + 3)
        vessels.append(Vessel(outline=box(x0, y0, x1, y1), x=(x0 + x1) / 2, y=(y0 + y1) / 2, length_m=80.0,
                              width_m=30.0, heading_deg=90.0, area_m2=2400.0, score=1.0, sensor="sentinel-2-l2a"))
    flagged = flag_at_berth(vessels, land, TRANSFORM, distance_m=30.0)
    for v in flagged:
        # The documented samples: outline vertices (on pixel edges: the pixels
        # on both sides) and the centroid, read from the full transform.
        pts = np.vstack([np.asarray(v.outline.exterior.coords), [[v.x, v.y]]])
        cols, rows = ~TRANSFORM @ (pts[:, 0], pts[:, 1])
        rr = np.concatenate([np.floor(rows), np.round(rows) - 1]).astype(int)
        cc = np.concatenate([np.floor(cols), np.round(cols) - 1]).astype(int)
        inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        expected = full[rr[inside], cc[inside]].min()
        assert v.attributes["distance_to_land_m"] == expected
        assert v.at_berth == (expected <= 30.0)
    assert any(v.at_berth for v in flagged) and not all(v.at_berth for v in flagged)
    no_land = flag_at_berth(vessels, np.zeros((h, w), bool), TRANSFORM)
    assert all(v.attributes["distance_to_land_m"] == float("inf") and not v.at_berth for v in no_land)
