"""`berthwatch update` played over a week of nights against a local static STAC catalog that grows.

The SIMULATED scenario ``tests/scenarios/watch-week.yaml`` is rendered once;
each night the catalog is rewritten to list only what has been "published" by
then, and ``berthwatch update --run-date <night>`` runs through the CLI:

========== ===================================================================
2023-09-06 first run, backfill from --since 2023-08-25 (Rajin 31 Aug-6 Sep, Dunai 27 Aug, 4 Sep)
2023-09-07 nothing new
2023-09-08 Dunai 8 Sep published; Rajin 8 Sep published but its download fails
2023-09-09 Rajin 8 Sep downloads; Dunai 31 Aug published late (before Dunai's last
           processed date: the look-back finds it)
2023-09-10 Rajin 10 Sep
2023-09-11 nothing new
2023-09-12 Rajin and Dunai 12 Sep (run without --fail-on-change)
========== ===================================================================

The change summaries must name exactly the arrivals, departures and the yard
step of the simulation's truth that happened after the first run, each on the
night its bracketing image was first processed; nothing else may be notable.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from berthwatch.pipeline.cli import app
from berthwatch.pipeline.core.contracts import S2
from berthwatch.pipeline.simulation.sample import generate_sample

SCENARIO = Path(__file__).parent / "scenarios" / "watch-week.yaml"
D = dt.date.fromisoformat
FIRST_NIGHT = D("2023-09-06")
FAILED = ("rajin", D("2023-09-08"))          # its download fails on the night of 8 Sep
LATE = ("dunai", D("2023-08-31"))            # published only on the night of 9 Sep
#: night -> extra CLI arguments
NIGHTS = {
    "2023-09-06": ["--since", "2023-08-25", "--fail-on-change"],
    "2023-09-07": ["--fail-on-change"],
    "2023-09-08": ["--fail-on-change"],
    "2023-09-09": ["--fail-on-change"],
    "2023-09-10": ["--fail-on-change"],
    "2023-09-11": ["--fail-on-change"],
    "2023-09-12": [],
}
EXPECTED_EXIT = {"2023-09-06": 0, "2023-09-07": 0, "2023-09-08": 1, "2023-09-09": 3, "2023-09-10": 3,
                 "2023-09-11": 0, "2023-09-12": 0}


def _item_date(href: str) -> tuple[str, dt.date]:
    parts = Path(href).parts  # ./items/<aoi>/<sensor>/<date>/<id>.json
    return parts[-4], D(parts[-2])


def publish(sample: Path, night: dt.date) -> None:
    """Rewrite the catalog to list the items published by ``night``."""
    full = json.loads((sample / "catalog-full.json").read_text())
    links = []
    for link in full["links"]:
        if link["rel"] == "item":
            aoi, date = _item_date(link["href"])
            if date > night or ((aoi, date) == LATE and night < D("2023-09-09")):
                continue
        links.append(link)
    (sample / "catalog.json").write_text(json.dumps({**full, "links": links}))


def files_state(root: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file under ``root`` except the folder locks."""
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and not p.name.startswith("lock")}


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    """Play the week; per night: exit code, output, files before and after, and the change summary."""
    root = tmp_path_factory.mktemp("watch")
    sample = root / "sample"
    generate_sample(SCENARIO, sample, workers=1)
    shutil.copy(sample / "catalog.json", sample / "catalog-full.json")
    failing = next((sample / "items" / FAILED[0] / S2 / FAILED[1].isoformat()).glob("*.tif"))
    good_bytes = failing.read_bytes()
    data, out = root / "data", root / "out"
    runner = CliRunner()
    nights = {}
    for night, extra in NIGHTS.items():
        publish(sample, D(night))
        # A failed download: the published file is truncated that night, whole again the next.
        if D(night) == FAILED[1]:
            failing.write_bytes(good_bytes[: len(good_bytes) // 3])
        elif D(night) == FAILED[1] + dt.timedelta(days=1):
            failing.write_bytes(good_bytes)
        before = files_state(out) if out.exists() else {}
        res = runner.invoke(app, ["update", "--source", "local", "--catalog", str(sample / "catalog.json"),
                                  "--data-dir", str(data), "--out-dir", str(out), "--run-date", night,
                                  "--workers", "1", *extra])
        if res.exception and not isinstance(res.exception, SystemExit):
            raise res.exception
        latest = out / "changes" / "latest.json"
        doc = json.loads(latest.read_text()) if latest.exists() else None
        nights[night] = {"code": res.exit_code, "output": res.output, "before": before, "after": files_state(out),
                         "doc": doc if doc and doc["run_date"] == night else None}
    return {"root": root, "sample": sample, "out": out, "data": data, "nights": nights,
            "truth": json.loads((sample / "truth" / "events.json").read_text())}


def _observations(sample: Path, aoi: str) -> list[dt.date]:
    return sorted({_item_date(str(p.relative_to(sample)))[1]
                   for p in (sample / "items" / aoi).glob("*/*/*.json")})


def expected_vessel_events(week) -> set[tuple]:
    """(kind, aoi, date, before) of every truth arrival and departure bracketed by two images after the first run."""
    out = set()
    for call in week["truth"]["port_calls"]:
        obs = _observations(week["sample"], call["aoi"])
        arrive, depart = D(call["arrive"]), D(call["depart"])
        there = [d for d in obs if arrive <= d <= depart]
        before = [d for d in obs if d < arrive]
        after = [d for d in obs if d > depart]
        if there and before:
            out.add(("arrival", call["aoi"], there[0], before[-1]))
        if there and after:
            out.add(("departure", call["aoi"], after[0], there[-1]))
    return {e for e in out if e[2] > FIRST_NIGHT}


def _later_nights(week):
    return [(n, v["doc"]) for n, v in week["nights"].items() if D(n) > FIRST_NIGHT and v["doc"]]


def test_exit_codes_follow_the_nights(week):
    codes = {n: v["code"] for n, v in week["nights"].items()}
    assert codes == EXPECTED_EXIT, {n: week["nights"][n]["output"][-600:] for n in codes if codes[n] != EXPECTED_EXIT[n]}


def test_change_summary_names_exactly_the_simulated_arrivals_and_departures(week):
    expected = expected_vessel_events(week)
    assert len(expected) == 3  # the scenario's calls after the first run: 1 arrival, 2 departures
    reported = {}
    for night, doc in _later_nights(week):
        for e in doc["events"]:
            if e["kind"] in ("arrival", "departure"):
                key = (e["kind"], e["aoi"], D(e["date"]), D(e["between"][0]))
                assert key not in reported, f"{key} reported twice"
                reported[key] = night
    assert set(reported) == expected
    for (kind, aoi, date, _), night in reported.items():
        # named on the night its image was first processed (8 Sep only after its failed download)
        processed = {(a["aoi"], D(a["date"])) for a in week["nights"][night]["doc"]["new_acquisitions"]}
        assert (aoi, date) in processed


def test_the_yard_step_is_named_with_its_range(week):
    steps = [(n, e) for n, doc in _later_nights(week) for e in doc["events"] if e["kind"] == "stack_step"]
    truth = [y for y in week["truth"]["yard_events"]]
    assert len(truth) == 1 and len(steps) == 1, steps
    night, step = steps[0]
    low, est, high = step["teu"]
    assert step["aoi"] == truth[0]["aoi"] and D(step["between"][0]) < D(truth[0]["date"]) <= D(step["between"][1])
    assert step["direction"] == "increase" and low <= truth[0]["teu"] <= high
    assert night == step["date"]


def test_only_new_and_reference_dependent_dates_are_recomputed(week):
    for night, v in week["nights"].items():
        doc = v["doc"]
        if doc is None:
            continue
        rewritten = {k.removeprefix("detections/").removesuffix(".geojson") for k, st in v["after"].items()
                     if k.startswith("detections/") and k.endswith(".geojson") and v["before"].get(k) != st}
        assert set(doc["recomputed"]) == rewritten
        new = {f"{a['aoi']}/{a['date']}" for a in doc["new_acquisitions"]}
        assert {k for k, why in doc["recomputed"].items() if why == "new"} == new
        gained = {k.split("/")[0] for k in new}
        for key, why in doc["recomputed"].items():
            # an older date is recomputed only because its AOI gained a tile that moved its reference
            assert why in ("new", "reference changed") and key.split("/")[0] in gained, (night, key, why)


def test_nights_with_nothing_new_touch_no_output(week):
    for night in ("2023-09-07", "2023-09-11"):
        v = week["nights"][night]
        doc = v["doc"]
        assert doc["new_acquisitions"] == [] and doc["events"] == [] and doc["recomputed"] == {}
        assert not doc["notable"] and "None." in (week["out"] / "changes" / f"{night}.md").read_text()
        changed = {k for k in set(v["before"]) | set(v["after"]) if v["before"].get(k) != v["after"].get(k)}
        # the stages' own bookkeeping (.berthwatch/) may be re-saved; no output an analyst reads changes
        assert {k for k in changed if not k.startswith(("changes/", ".berthwatch/"))} == set(), changed


def test_nothing_new_skips_detect_and_report_unless_something_they_depend_on_changed(week):
    from berthwatch.pipeline.core.aoi import resolve_aois
    from berthwatch.pipeline.core.claims import resolve_claim
    from berthwatch.pipeline.core.options import RunOptions
    from berthwatch.pipeline.update.unchanged import nothing_to_do

    for night in ("2023-09-07", "2023-09-11"):
        assert "detections and report are up to date" in week["nights"][night]["output"]
    assert "detections and report are up to date" not in week["nights"]["2023-09-10"]["output"]
    opts = RunOptions(aois=resolve_aois(None), data_dir=week["data"], out_dir=week["out"], source="local",
                      extra={"workers": 1})
    claim = resolve_claim("us-nsc-2023-10-13")
    assert nothing_to_do(opts, claim)[0]
    opts.extra["workers"] = 2  # where work runs does not matter
    assert nothing_to_do(opts, claim)[0]
    assert not nothing_to_do(RunOptions(**{**opts.__dict__, "extra": {"detector_params": {"sar": {"pfa": 1e-7}}}}),
                             claim)[0]
    assert not nothing_to_do(RunOptions(**{**opts.__dict__, "aois": resolve_aois(["rajin"])}), claim)[0]
    detection = next((week["out"] / "detections" / "rajin").glob("*.geojson"))
    stat = detection.stat()
    try:
        detection.touch()
        assert not nothing_to_do(opts, claim)[0]  # an output was touched: let the stages check
    finally:
        import os

        os.utime(detection, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert nothing_to_do(opts, claim)[0]


def test_a_failed_night_leaves_the_previous_outputs_intact_and_the_next_recovers(week):
    failed = week["nights"]["2023-09-08"]
    assert failed["doc"] is None and "fetch failed" in failed["output"]
    assert failed["after"] == failed["before"], "a failed night changed the outputs"
    assert not any(".tmp" in k for k in failed["after"])
    nxt = week["nights"]["2023-09-09"]["doc"]
    processed = {(a["aoi"], D(a["date"])) for a in nxt["new_acquisitions"]}
    # the failed tile, the Dunai tile fetched on the failed night, and the late product
    assert {FAILED, ("dunai", D("2023-09-08")), LATE} <= processed
    assert nxt["previous_run"]["run_date"] == "2023-09-07"


def test_look_back_finds_a_product_published_late(week):
    doc = week["nights"]["2023-09-09"]["doc"]
    start = D(doc["fetch_windows"][f"dunai/{S2}"][0])
    assert start == D("2023-09-04") - dt.timedelta(days=5) <= LATE[1]
    late = [a for a in doc["new_acquisitions"] if (a["aoi"], D(a["date"])) == LATE]
    assert late and late[0]["usable"] is True


def test_first_run_is_a_baseline_and_the_last_reports_without_failing(week):
    first = week["nights"]["2023-09-06"]["doc"]
    assert first["first_run"] and not first["notable"] and first["previous_run"] is None
    assert len(first["new_acquisitions"]) == 6
    last = week["nights"]["2023-09-12"]["doc"]
    assert last["notable"] and week["nights"]["2023-09-12"]["code"] == 0  # no --fail-on-change


def test_markdown_and_json_agree_and_link_the_report(week):
    out = week["out"]
    doc = week["nights"]["2023-09-10"]["doc"]
    md = (out / "changes" / "2023-09-10.md").read_text()
    assert json.loads((out / "changes" / "2023-09-10.json").read_text()) == doc
    assert (out / "changes" / "latest.md").read_text() == (out / "changes" / "2023-09-12.md").read_text()
    assert "SIMULATED" in md and "[index.html](../report/index.html)" in md
    for e in doc["events"]:
        assert e["text"] in md
    assert doc["simulated_input"] is True
    for a in doc["new_acquisitions"]:
        thumb = a["thumbnail"]
        exists = (out / "report" / "thumbnails" / a["aoi"] / f"{a['date']}-s2.png").exists()
        assert (thumb is not None) == exists
        if thumb:
            assert (out / "changes" / thumb).resolve().is_file()


def test_dry_run_and_a_second_run_of_a_date(week, tmp_path):
    """--dry-run shows the windows and changes nothing; a second run of a date gets its own file."""
    out, data, sample = week["out"], week["data"], week["sample"]
    before = files_state(out)
    res = CliRunner().invoke(app, ["update", "--source", "local", "--catalog", str(sample / "catalog.json"),
                                   "--data-dir", str(data), "--out-dir", str(out), "--run-date", "2023-09-12",
                                   "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "fetching 2023-09-07 to 2023-09-12" in res.output and "# 0 tile(s) to fetch" in res.output
    assert files_state(out) == before
    res = CliRunner().invoke(app, ["update", "--source", "local", "--catalog", str(sample / "catalog.json"),
                                   "--data-dir", str(data), "--out-dir", str(out), "--run-date", "2023-09-12",
                                   "--workers", "1"])
    assert res.exit_code == 0, res.output
    again = json.loads((out / "changes" / "2023-09-12-2.json").read_text())
    assert again["previous_run"]["run_date"] == "2023-09-12" and again["events"] == []


@pytest.mark.parametrize("args, message", [
    (["--run-date", "2023-02-30"], "--run-date: '2023-02-30' is not a date"),
    (["--run-date", "2023-09-01", "--since", "2023-09-02"], "--since 2023-09-02 is after --run-date 2023-09-01"),
    (["--claim", "nowhere.yaml"], "nowhere.yaml"),
])
def test_bad_arguments_are_one_line(tmp_path, args, message):
    res = CliRunner().invoke(app, ["update", "--source", "local", "--out-dir", str(tmp_path / "out"),
                                   "--data-dir", str(tmp_path / "data"), *args])
    assert res.exit_code in (1, 2)
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], res.output
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- the comparison, on constructed summaries
def _call(aoi, arrive, depart, lon=130.28, lat=42.22, length=120.0, cid="c"):
    return {"aoi": aoi, "id": cid, "length_m": length, "lon": lon, "lat": lat, "arrive": arrive, "depart": depart,
            "seen": [], "sensors": [S2]}


def _summary(calls=(), steps=(), verdict=None, claim="c1"):
    return {"claim": claim, "port_calls": list(calls), "stack_changes": list(steps),
            "verdict": verdict or {"activity": "insufficient_data", "quantity": "insufficient_data", "reasons": ["x"]},
            "params": {"match_distance_m": 150.0, "min_clear": 0.6}}


def test_compare_reports_a_closing_call_once_and_matches_brackets_refined_by_a_late_image():
    from berthwatch.pipeline.update.changes import compare

    before = _summary([_call("rajin", ["2023-09-02", "2023-09-06"], ["2023-09-06", None])])
    # the call closed on 10 Sep; a late image of 4 Sep refined its arrival bracket; the ship is ~60 m off
    after = _summary([_call("rajin", ["2023-09-04", "2023-09-06"], ["2023-09-08", "2023-09-10"], lon=130.2807,
                            length=128.0)])
    new, revised, withdrawn = compare(before, after, {"rajin": {D("2023-09-04"), D("2023-09-10")}})
    assert [(e.kind, e.date, e.between) for e in new] == [("departure", D("2023-09-10"),
                                                           (D("2023-09-08"), D("2023-09-10")))]
    assert revised == [] and withdrawn == []


def test_compare_separates_news_from_revised_history_and_withdrawals():
    from berthwatch.pipeline.update.changes import compare

    step = {"aoi": "dunai", "before": "2023-09-01", "after": "2023-09-05", "delta_area_m2": -3000.0,
            "direction": "decrease", "teu": [-357, -255, -153]}
    before = _summary([_call("rajin", ["2023-09-01", "2023-09-03"], ["2023-09-05", "2023-09-07"])], [step])
    after = _summary([_call("rajin", ["2023-09-01", "2023-09-03"], ["2023-09-05", "2023-09-07"]),
                      _call("rajin", ["2023-09-03", "2023-09-05"], ["2023-09-05", None], lon=130.30, cid="d"),
                      _call("dunai", ["2023-09-09", "2023-09-11"], ["2023-09-11", None], lon=132.3, lat=42.9)])
    new, revised, withdrawn = compare(before, after, {"dunai": {D("2023-09-11")}})
    assert [(e.kind, e.aoi) for e in new] == [("arrival", "dunai")]
    assert [(e.kind, e.aoi, e.date) for e in revised] == [("arrival", "rajin", D("2023-09-05"))]
    assert [(e.kind, e.aoi) for e in withdrawn] == [("stack_step", "dunai")]
    assert "decreased by 3,000 m2" in withdrawn[0].text() and "-255 TEU (range 153 to 357)" in withdrawn[0].text()


def test_a_verdict_change_is_news_but_its_reasons_and_another_claim_are_not():
    from berthwatch.pipeline.update.changes import compare, verdict_change

    old = _summary()
    new = _summary(verdict={"activity": "consistent", "quantity": "insufficient_data", "reasons": ["y"]})
    events, _, _ = compare(old, new, {})
    assert [e.kind for e in events] == ["verdict"]
    assert events[0].text() == "activity verdict insufficient_data -> consistent"
    assert verdict_change(old, _summary(verdict={**old["verdict"], "reasons": ["other words"]})) is None
    assert verdict_change(old, {**new, "claim": "another"}) is None
    assert compare(None, new, {})[0] == []  # the first report: nothing to compare with


def test_thumbnails_are_linked_only_when_the_report_has_them(tmp_path):
    from berthwatch.pipeline.update.changes import thumbnail

    out = tmp_path / "out"
    changes = out / "changes"
    assert thumbnail(out, "rajin", D("2023-09-04"), changes) is None
    png = out / "report" / "thumbnails" / "rajin" / "2023-09-04-s1.png"
    png.parent.mkdir(parents=True)
    png.write_bytes(b"\x89PNG")
    assert thumbnail(out, "rajin", D("2023-09-04"), changes) == "../report/thumbnails/rajin/2023-09-04-s1.png"
    (png.parent / "2023-09-04-s2.png").write_bytes(b"\x89PNG")  # Sentinel-2 preferred
    assert thumbnail(out, "rajin", D("2023-09-04"), changes).endswith("2023-09-04-s2.png")


def test_keep_going_reports_a_failed_fetch_and_without_it_nothing_is_written(tmp_path, monkeypatch):
    """The control flow around a failed fetch (the fetch itself is exercised in the week above)."""
    from berthwatch.pipeline.core.aoi import resolve_aois
    from berthwatch.pipeline.core.claims import resolve_claim
    from berthwatch.pipeline.core.options import RunOptions
    from berthwatch.pipeline.update import UpdateSettings, run_update
    from berthwatch.pipeline.update import stage as update_stage

    monkeypatch.setattr(update_stage, "run_fetch", lambda opts, settings: 1)
    opts = RunOptions(aois=resolve_aois(["rajin"]), data_dir=tmp_path / "data", out_dir=tmp_path / "out",
                      source="local")
    claim = resolve_claim("us-nsc-2023-10-13")
    assert run_update(opts, claim, UpdateSettings(run_date=D("2023-09-10"))) == 1
    assert not (tmp_path / "out" / "changes").exists()
    assert run_update(opts, claim, UpdateSettings(run_date=D("2023-09-10"), keep_going=True)) == 1
    doc = json.loads((tmp_path / "out" / "changes" / "2023-09-10.json").read_text())
    assert "fetch" in doc["failed"] and doc["new_acquisitions"] == [] and not doc["notable"]


def test_failed_detections_are_listed_with_the_stage_reason(tmp_path):
    from berthwatch.pipeline.core.aoi import resolve_aois
    from berthwatch.pipeline.core.options import RunOptions
    from berthwatch.pipeline.update.stage import _failed_dates
    from berthwatch.pipeline.update.state import snapshot

    data, out = tmp_path / "data", tmp_path / "out"
    for day in ("2023-09-04", "2023-09-06"):
        tile = data / "tiles" / "rajin" / S2 / day / f"S2_{day}.tif"
        tile.parent.mkdir(parents=True)
        tile.write_bytes(b"")
    (out / "detections").mkdir(parents=True)
    (out / "detections" / "failed.json").write_text(json.dumps({"failed": [
        {"aoi": "rajin", "date": "2023-09-06", "error": "tile is not a GeoTIFF", "kept_previous": True}]}))
    opts = RunOptions(aois=resolve_aois(["rajin"]), data_dir=data, out_dir=out, source="local")
    assert _failed_dates(opts, snapshot(out)) == {
        "rajin/2023-09-04": "detection failed (see the log above)",
        "rajin/2023-09-06": "tile is not a GeoTIFF; the earlier detections are kept"}
