"""`berthwatch update` with its defaults (--source sentinelhub --endpoint sentinelhub) over two nights,
through the real sentinelhub client against the loopback Sentinel Hub of ``fake_servers``."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from berthwatch.pipeline.cli import app
from berthwatch.pipeline.core.contracts import S1, S2, find_tiles

from fake_servers import CLIENT_SECRET, all_text_under
from test_fetch_sentinelhub import default_deployment  # noqa: F401  (fixture)

SEARCH = "/api/v1/catalog/1.0.0/search"


def _windows(server, since: int) -> dict[str, str]:
    return {r.json()["collections"][0]: r.json()["datetime"] for r in server.hits(SEARCH)[since:]
            if not r.json().get("next")}


def test_default_update_fetches_only_since_the_last_processed_acquisition(default_deployment, tmp_path):
    server, fake, aoi, data = default_deployment
    out = tmp_path / "out"
    args = ["update", "--aoi", str(aoi.path), "--data-dir", str(data), "--out-dir", str(out), "--workers", "1"]
    res = CliRunner().invoke(app, [*args, "--run-date", "2023-09-10", "--since", "2023-09-01"])
    assert res.exit_code == 0, res.output
    assert [(t.sensor, t.date.isoformat()) for t in find_tiles(data)] == [
        (S2, "2023-09-03"), (S1, "2023-09-05"), (S2, "2023-09-08")]
    windows = _windows(server, 0)
    assert windows[S2].startswith("2023-09-01T00:00:00") and "2023-09-10T23:59:59" in windows[S2]
    first = json.loads((out / "changes" / "2023-09-10.json").read_text())
    assert first["first_run"] and len(first["new_acquisitions"]) == 3 and (out / "report" / "summary.json").exists()

    n_search, n_process = len(server.hits(SEARCH)), len(fake.process_bodies)
    res = CliRunner().invoke(app, [*args, "--run-date", "2023-09-14"])
    assert res.exit_code == 0, res.output
    windows = _windows(server, n_search)
    # five days of look-back before each sensor's last processed acquisition
    assert windows[S2].startswith("2023-09-03T00:00:00") and "2023-09-14T23:59:59" in windows[S2]
    assert windows[S1].startswith("2023-08-31T00:00:00")
    assert len(fake.process_bodies) == n_process + 1  # only the new Sentinel-1 scene of 11 Sep is downloaded
    second = json.loads((out / "changes" / "2023-09-14.json").read_text())
    assert [(a["date"], a["sensors"]) for a in second["new_acquisitions"]] == [("2023-09-11", [S1])]
    assert second["previous_run"]["run_date"] == "2023-09-10"
    assert CLIENT_SECRET not in res.output + all_text_under(out) + all_text_under(data)
