"""One scrubber for every error text: tokens, Authorization headers, client secrets, URL query secrets."""

from __future__ import annotations

import logging

import pytest

from berthwatch.pipeline.core.errors import describe
from berthwatch.pipeline.core.scrub import REDACTED, ScrubFilter, register_secret, scrub

from fake_servers import ACCESS_TOKEN, CLIENT_SECRET

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbmFseXN0In0.c2lnbmF0dXJlLXZhbHVl"


@pytest.mark.parametrize("text,secret", [
    ("Authorization: Bearer abc.def-ghi_123", "abc.def-ghi_123"),
    ('{"headers": {"Authorization": "Bearer tok-Must-Not-Leak"}}', "tok-Must-Not-Leak"),
    ("'authorization': 'Basic dXNlcjpwYXNzd29yZA=='", "dXNlcjpwYXNzd29yZA=="),
    (f"token {JWT} expired", JWT),
    ("client_id=abc&client_secret=s3cr3t-form-value&grant_type=client_credentials", "s3cr3t-form-value"),
    ('{"access_token": "opaque-token-value", "expires_in": 3600}', "opaque-token-value"),
    ("GET https://pc.blob.core.windows.net/x.tif?st=2023&se=2024&sp=r&sig=AbC%2Fsas-signature%3D failed",
     "AbC%2Fsas-signature%3D"),
    ("https://s3.amazonaws.com/b/k?X-Amz-Signature=deadbeefcafe&X-Amz-Credential=AKIA/x", "deadbeefcafe"),
    ("https://analyst:hunter2-password@example.org/catalog.json", "hunter2-password"),
    ("refresh_token=rt-value-123 in body", "rt-value-123"),
])
def test_secrets_are_removed(text, secret):
    out = scrub(text)
    assert secret not in out and REDACTED in out


def test_known_secret_values_are_removed_wherever_they_appear(monkeypatch):
    monkeypatch.setenv("SH_CLIENT_SECRET", "plain-secret-in-a-message")
    assert "plain-secret-in-a-message" not in scrub("server said: bad plain-secret-in-a-message!")
    register_secret("profile-secret-9876")
    assert "profile-secret-9876" not in scrub("profile-secret-9876")


def test_ordinary_text_is_kept():
    text = "/data/tiles/rajin/sentinel-1-grd/2023-09-01/S1_20230901.tif: does not match the file:checksum"
    assert scrub(text) == text
    assert scrub("--start: '2023-13-45' is not a date (YYYY-MM-DD)") == "--start: '2023-13-45' is not a date (YYYY-MM-DD)"


def test_errors_and_log_records_are_scrubbed():
    assert "opaque" not in describe(RuntimeError('{"access_token": "opaque"}'))
    record = logging.LogRecord("berthwatch", logging.ERROR, __file__, 1, "failed: %s", (f"Bearer {ACCESS_TOKEN}",),
                               None)
    ScrubFilter().filter(record)
    assert ACCESS_TOKEN not in record.getMessage()
    try:
        raise ValueError(f"client_secret={CLIENT_SECRET}")
    except ValueError:
        import sys

        record = logging.LogRecord("berthwatch", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    ScrubFilter().filter(record)
    assert CLIENT_SECRET not in logging.Formatter().format(record)


def test_echoed_authorization_header_never_reaches_stderr(tmp_path, monkeypatch):
    """A Process API error body that echoes the request (headers and all) is printed scrubbed."""
    from sentinelhub import SentinelHubDownloadClient, SHConfig
    from typer.testing import CliRunner

    from berthwatch.pipeline.cli import app
    from fake_servers import CLIENT_ID, FakeServer, SentinelHubFake, aoi_file, all_text_under, sh_feature

    server = FakeServer().start()
    fake = SentinelHubFake(server, {"sentinel-2-l2a": [sh_feature(
        "S2A_MSIL2A_20230903T021531_N0509_R003_T52TGN_20230903T050000", "2023-09-03T02:15:31Z",
        (130.2, 42.1, 130.4, 42.3), 12)], "sentinel-1-grd": []})
    try:
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
        monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
        monkeypatch.setenv("SH_CLIENT_ID", CLIENT_ID)
        monkeypatch.setenv("SH_CLIENT_SECRET", CLIENT_SECRET)
        SHConfig(use_defaults=True, sh_base_url=server.url, sh_token_url=fake.token_url,
                 download_timeout_seconds=1.0, max_download_attempts=1, download_sleep_time=0.01).save("echo")
        monkeypatch.setenv("SH_PROFILE", "echo")
        SentinelHubDownloadClient.clear_cache()
        server.inject("/api/v1/process", *[("echo", 400)] * 6)
        aoi = aoi_file(tmp_path, "testport", 130.280, 42.220, 130.288, 42.2255)
        res = CliRunner().invoke(app, ["fetch", "--aoi", str(aoi), "--start", "2023-09-01", "--end", "2023-09-05",
                                       "--sensor", "s2", "--data-dir", str(tmp_path / "data")])
    finally:
        SentinelHubDownloadClient.clear_cache()
        server.stop()
    text = res.stdout + res.stderr + all_text_under(tmp_path / "data")
    assert res.exit_code == 1, res.stderr
    assert '"authorization": "[redacted]"' in res.stderr  # the echoed body is shown, scrubbed
    assert ACCESS_TOKEN not in text and ACCESS_TOKEN.split(".")[1] not in text and CLIENT_SECRET not in text
