"""Fetch from Sentinel Hub through the real sentinelhub-py code paths against a local fake service."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pytest

from berthwatch.pipeline.core.aoi import load_aoi
from berthwatch.pipeline.core.contracts import S1, S2, find_tiles, read_item, read_tile, tile_checksum_ok
from berthwatch.pipeline.core.errors import UserError
from berthwatch.pipeline.fetch import FetchSettings, run_fetch
from berthwatch.pipeline.core.options import RunOptions
from berthwatch.pipeline.fetch.sources import sentinelhub as sh_mod
from berthwatch.pipeline.fetch.sources.sentinelhub import estimate_processing_units, make_config

from fake_servers import (
    ACCESS_TOKEN, CLIENT_ID, CLIENT_SECRET, FakeServer, SentinelHubFake, aoi_file, all_text_under, pattern,
    sh_feature,
)

BBOX = (130.280, 42.220, 130.288, 42.2255)  # about 660 x 610 m: 67 x 62 px
FOOT = (130.2, 42.1, 130.4, 42.3)


def scenes():
    return {
        "sentinel-2-l2a": [
            sh_feature("S2A_MSIL2A_20230903T021531_N0509_R003_T52TGN_20230903T050000", "2023-09-03T02:15:31Z", FOOT, 12),
            sh_feature("S2B_MSIL2A_20230908T021529_N0509_R003_T52TGN_20230908T050524", "2023-09-08T02:15:29Z", FOOT, 40),
            sh_feature("S2B_MSIL2A_20230908T021529_N0509_R003_T52TGP_20230908T050524", "2023-09-08T02:15:33Z", FOOT, 5),
            sh_feature("S2A_MSIL2A_20230913T021531_N0509_R003_T52TGN_20230913T050000", "2023-09-13T02:15:31Z", FOOT, 95),
        ],
        "sentinel-1-grd": [
            sh_feature("S1A_IW_GRDH_1SDV_20230905T093015_20230905T093040_050000_060000_ABCD", "2023-09-05T09:30:15Z",
                       FOOT, s1=True, orbit="descending"),
            sh_feature("S1A_IW_GRDH_1SDV_20230911T211015_20230911T211040_050100_060100_BCDE", "2023-09-11T21:10:15Z",
                       FOOT, s1=True, orbit="ascending"),
        ],
    }


@pytest.fixture
def sh(tmp_path, monkeypatch):
    from sentinelhub import SentinelHubDownloadClient, SHConfig

    server = FakeServer().start()
    fake = SentinelHubFake(server, scenes())
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the fake token service is plain http
    monkeypatch.setenv("SH_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SH_CLIENT_SECRET", CLIENT_SECRET)
    # The user's standard sentinelhub profile, pointed at the fake deployment with short timeouts.
    SHConfig(use_defaults=True, sh_base_url=server.url, sh_token_url=fake.token_url, download_timeout_seconds=1.0,
             max_download_attempts=4, download_sleep_time=0.05).save("berthwatch-test")
    monkeypatch.setenv("SH_PROFILE", "berthwatch-test")
    SentinelHubDownloadClient.clear_cache()
    aoi = load_aoi(aoi_file(tmp_path, "testport", *BBOX))
    yield server, fake, aoi, tmp_path / "data"
    SentinelHubDownloadClient.clear_cache()
    server.stop()


def options(aoi, data_dir, sensors=(S2, S1)):
    return RunOptions(aois=[aoi], start=dt.date(2023, 9, 1), end=dt.date(2023, 9, 30), sensors=tuple(sensors),
                      data_dir=data_dir, source="sentinelhub")


def settings(**kw):
    return FetchSettings(workers=kw.pop("workers", 3), backoff_s=kw.pop("backoff_s", 0.05), **kw)


def expected(aoi, n):
    g = aoi.grid()
    return pattern(g.bounds, g.width, g.height, n)


def test_fetch_writes_contract_tiles_and_items(sh):
    server, fake, aoi, data = sh
    assert run_fetch(options(aoi, data), settings()) == 0

    tiles = find_tiles(data)
    # S2: 09-03, 09-08 (two granules mosaicked); 09-13 is 95 % cloudy (> 80). S1: two dates.
    assert [(t.sensor, t.date.isoformat()) for t in tiles] == [
        (S2, "2023-09-03"), (S1, "2023-09-05"), (S2, "2023-09-08"), (S1, "2023-09-11")]
    assert len(server.hits("/api/v1/catalog/1.0.0/search")) >= 3  # page size 2: paging followed
    for t in tiles:
        assert tile_checksum_ok(t.path)
        bands, grid = read_tile(t.path)
        assert grid == aoi.grid()
        np.testing.assert_allclose(np.stack(list(bands.values())), expected(aoi, len(bands)), rtol=1e-6)
        item = read_item(t.path)
        assert item["properties"]["berthwatch:source"] == "sentinelhub"
        assert item["properties"]["berthwatch:simulated"] is False
    mosaic = [t for t in tiles if t.date == dt.date(2023, 9, 8)][0]
    assert mosaic.scene_id == "S2_20230908_2scenes"
    assert len(read_item(mosaic.path)["properties"]["berthwatch:product_ids"]) == 2

    bodies = {b["input"]["data"][0]["type"]: b for b in fake.process_bodies}
    s1, s2 = bodies["sentinel-1-grd"], bodies["sentinel-2-l2a"]
    assert s1["input"]["data"][0]["processing"]["backCoeff"] == "SIGMA0_ELLIPSOID"
    assert s1["input"]["data"][0]["processing"]["orthorectify"] is True
    assert s2["input"]["data"][0]["dataFilter"]["mosaickingOrder"] == "leastCC"
    assert s2["input"]["bounds"]["properties"]["crs"].endswith("/32652")
    assert (s2["output"]["width"], s2["output"]["height"]) == (aoi.grid().width, aoi.grid().height)
    assert s2["output"]["responses"][0]["format"]["type"] == "image/tiff"


def test_rerun_skips_present_tiles_and_refetches_a_damaged_one(sh):
    server, fake, aoi, data = sh
    assert run_fetch(options(aoi, data), settings()) == 0
    n = len(fake.process_bodies)
    assert run_fetch(options(aoi, data), settings()) == 0
    assert len(fake.process_bodies) == n  # nothing downloaded again
    victim = find_tiles(data)[0].path
    victim.write_bytes(victim.read_bytes()[:1000])
    assert run_fetch(options(aoi, data), settings()) == 0
    assert len(fake.process_bodies) == n + 1 and tile_checksum_ok(victim)


def test_large_aoi_is_split_and_stitched(sh, monkeypatch):
    server, fake, aoi, data = sh
    monkeypatch.setattr(sh_mod, "MAX_REQUEST_PX", 25)
    assert run_fetch(options(aoi, data, sensors=(S2,)), settings()) == 0
    g = aoi.grid()
    parts = -(-g.width // 25) * -(-g.height // 25)
    assert len(fake.process_bodies) == 2 * parts
    assert all(b["output"]["width"] <= 25 and b["output"]["height"] <= 25 for b in fake.process_bodies)
    for t in find_tiles(data):
        bands, _ = read_tile(t.path)
        np.testing.assert_allclose(np.stack(list(bands.values())), expected(aoi, 6), rtol=1e-6)


def test_transient_faults_are_retried(sh):
    server, fake, aoi, data = sh
    server.inject("/api/v1/catalog", ("status", 503))
    # Sentinel Hub's Retry-After is in milliseconds (sentinelhub-py reads it so).
    server.inject("/api/v1/process", ("status", 429, {"Retry-After": "400"}), ("status", 500), ("reset",),
                  ("truncate",), ("corrupt",), ("slow", 2.5))
    assert run_fetch(options(aoi, data), settings(workers=1)) == 0
    assert len(find_tiles(data)) == 4
    hits = server.hits("/api/v1/process")
    assert len(hits) == 4 + 6
    assert hits[1].time - hits[0].time >= 0.35  # waited for Retry-After
    assert not list(data.rglob(".*.tmp*"))


def test_persistent_failure_keeps_the_rest_and_rerun_completes(sh, capsys):
    server, fake, aoi, data = sh
    server.inject("/api/v1/process", *[("status", 500)] * 3)  # every attempt of the first tile
    assert run_fetch(options(aoi, data), settings(workers=1, attempts=3)) == 1
    err = capsys.readouterr().err
    assert "failed" in err and "500" in err
    assert len(find_tiles(data)) == 3
    assert all(tile_checksum_ok(t.path) for t in find_tiles(data))
    assert not [p for p in data.rglob("*") if p.is_file() and ".tmp" in p.name]
    assert run_fetch(options(aoi, data), settings()) == 0
    assert len(find_tiles(data)) == 4


def test_corrupt_response_never_becomes_a_tile(sh):
    server, fake, aoi, data = sh
    server.inject("/api/v1/process", *[("corrupt",)] * 9)
    assert run_fetch(options(aoi, data, sensors=(S2,)), settings(workers=1, attempts=2)) == 1
    assert find_tiles(data) == [] or all(tile_checksum_ok(t.path) for t in find_tiles(data))


def test_missing_and_rejected_credentials(sh, monkeypatch):
    server, fake, aoi, data = sh
    monkeypatch.setenv("SH_CLIENT_SECRET", "wrong-secret")
    with pytest.raises(UserError, match="credentials rejected.*SH_CLIENT_ID and SH_CLIENT_SECRET"):
        run_fetch(options(aoi, data), settings())
    monkeypatch.setenv("SH_CLIENT_ID", "")
    monkeypatch.setenv("SH_CLIENT_SECRET", "")
    with pytest.raises(UserError, match="credentials missing: set SH_CLIENT_ID and SH_CLIENT_SECRET"):
        run_fetch(options(aoi, data), settings())


def test_secrets_never_logged_or_written(sh, caplog, capsys):
    server, fake, aoi, data = sh
    caplog.set_level(logging.DEBUG)
    logging.getLogger("berthwatch").setLevel(logging.DEBUG)
    server.inject("/api/v1/process", ("status", 500), *[("status", 400)] * 2)
    run_fetch(options(aoi, data), settings(workers=1))
    out = capsys.readouterr()
    text = caplog.text + out.out + out.err + all_text_under(data)
    assert CLIENT_SECRET not in text and ACCESS_TOKEN not in text and ACCESS_TOKEN.split(".")[1] not in text
    assert "Bearer" not in text


def test_dry_run_lists_scenes_and_processing_units(sh, capsys):
    server, fake, aoi, data = sh
    assert run_fetch(options(aoi, data), settings(dry_run=True)) == 0
    out = capsys.readouterr().out
    assert "2023-09-08" in out and "S2B_MSIL2A_20230908T021529" in out and "processing units" in out
    assert fake.process_bodies == [] and find_tiles(data) == []


def test_processing_unit_rules():
    from affine import Affine
    from pyproj import CRS

    from berthwatch.pipeline.core.aoi import Grid

    g = Grid(CRS.from_epsg(32652), Affine(10, 0, 0, 0, -10, 0), 512, 512)
    assert estimate_processing_units(S2, g) == pytest.approx(1 * 6 / 3 * 2)  # 6 bands, FLOAT32
    assert estimate_processing_units(S1, g) == pytest.approx(1 * 2 / 3 * 2 * 2)  # + orthorectification
    tiny = Grid(g.crs, g.transform, 10, 10)
    assert estimate_processing_units(S2, tiny) == pytest.approx(0.01 * 2 * 2)  # area factor floor 0.01
    big = Grid(g.crs, g.transform, 3000, 2600)  # split into 4 requests
    assert estimate_processing_units(S2, big) == pytest.approx(3000 * 2600 / 512 ** 2 * 4)


def test_cdse_endpoint_switches_urls(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("SH_PROFILE", raising=False)
    monkeypatch.setenv("SH_CLIENT_ID", "id")
    monkeypatch.setenv("SH_CLIENT_SECRET", "secret")
    cfg = make_config("cdse")
    assert cfg.sh_base_url == "https://sh.dataspace.copernicus.eu"
    assert cfg.sh_token_url.startswith("https://identity.dataspace.copernicus.eu/")
    assert make_config("sentinelhub").sh_base_url == "https://services.sentinel-hub.com"
    with pytest.raises(UserError, match="--endpoint"):
        make_config("mars")


def test_cli_dry_run(sh):
    import subprocess
    import sys

    server, fake, aoi, data = sh
    import os

    r = subprocess.run([sys.executable, "-m", "berthwatch.pipeline.cli", "fetch", "--aoi", str(aoi.path),
                        "--start", "2023-09-01", "--end", "2023-09-10", "--source", "sentinelhub",
                        "--sensor", "s2", "--dry-run", "--data-dir", str(data)],
                       capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert r.returncode == 0, r.stderr
    assert "S2A_MSIL2A_20230903T021531" in r.stdout and "2023-09-13" not in r.stdout
    assert CLIENT_SECRET not in r.stdout + r.stderr





@pytest.fixture
def default_deployment(tmp_path, monkeypatch):
    """The fake service answering as https://services.sentinel-hub.com, sentinelhub-py's default.

    The host name resolves to the loopback server and its certificate comes from a
    test certificate authority that requests is told to trust; nothing else of the
    client's configuration is changed (no profile, no URL).
    """
    import socket
    import ssl

    import trustme
    from sentinelhub import SentinelHubDownloadClient

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("services.sentinel-hub.com").configure_cert(context)
    server = FakeServer(ssl_context=context).start()
    fake = SentinelHubFake(server, scenes())
    real_getaddrinfo = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        if host == "services.sentinel-hub.com":
            return real_getaddrinfo("127.0.0.1", server.port, *args, **kwargs)
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SH_PROFILE", raising=False)
    monkeypatch.setenv("SH_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SH_CLIENT_SECRET", CLIENT_SECRET)
    SentinelHubDownloadClient.clear_cache()
    yield server, fake, load_aoi(aoi_file(tmp_path, "testport", *BBOX)), tmp_path / "data"
    SentinelHubDownloadClient.clear_cache()
    server.stop()


def test_default_fetch_command_uses_the_default_deployment(default_deployment):
    """`berthwatch fetch` with its defaults (--source sentinelhub --endpoint sentinelhub, the
    library's default URLs, which its predefined collections are bound to) fetches tiles."""
    from typer.testing import CliRunner

    from berthwatch.pipeline.cli import app

    server, fake, aoi, data = default_deployment
    res = CliRunner().invoke(app, ["fetch", "--aoi", str(aoi.path), "--start", "2023-09-01", "--end", "2023-09-10",
                                   "--data-dir", str(data)])
    assert res.exit_code == 0, res.output
    assert [(t.sensor, t.date.isoformat()) for t in find_tiles(data)] == [
        (S2, "2023-09-03"), (S1, "2023-09-05"), (S2, "2023-09-08")]
    assert server.hits("/auth/realms/main/protocol/openid-connect/token")
    assert {b["input"]["data"][0]["type"] for b in fake.process_bodies} == {S1, S2}
    assert read_item(find_tiles(data)[0].path)["properties"]["berthwatch:processing"]["endpoint"] == \
        "https://services.sentinel-hub.com"
