"""``berthwatch update``: the nightly run. Fetch what is new, detect it, re-render the report, say what changed.

1. From the detect manifest, the last acquisition already processed per AOI and
   sensor (:mod:`.state`). The fetch window of each starts ``lookback_days``
   before it (products published late, or reprocessed, are picked up) and ends
   on the run date; an AOI and sensor with nothing processed yet starts at
   ``since`` (default: ``initial_days`` before the run date).
2. fetch (incremental: tiles present and current are skipped). If any tile or
   search fails, the run stops here with exit 1: detections, report and change
   summaries stay exactly as the previous run left them, and the next run,
   whose window still starts at the same processed date, fetches the failed
   tiles again. ``keep_going`` carries on with what was fetched instead (a
   failed date is then retried only while it is within ``lookback_days``).
3. detect over every tile on disk (incremental: only new AOI-dates and those
   whose inputs changed are computed; a new tile that moves the AOI's
   reference water mask or Sentinel-2 median recomputes every date of that
   AOI, because results must equal a run from scratch).
4. report (re-rendered only when a detections file changed). Steps 3 and 4
   are skipped, without loading them, when nothing they depend on changed
   since the last complete run (:mod:`.unchanged`).
5. ``<out>/changes/<run-date>.json`` and ``.md`` (:mod:`.changes`, :mod:`.render`).

Exit codes: 0 done, nothing notable (or notable without ``fail_on_change``);
:data:`EXIT_NOTABLE` (3) done and something notable changed, with
``fail_on_change``; 1 a failure (fetch failed: nothing else was touched;
detect failed for some AOI-dates: the report and change summary cover the
rest and list them).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

from berthwatch import __version__

from ..core.claims import Claim
from ..core.contracts import find_tiles
from ..core.errors import UserError
from ..core.manifest import MANIFEST_DIR, DirLock
from ..core.options import RunOptions
from ..fetch import FetchSettings, run_fetch
from . import changes as ch
from . import unchanged
from .render import acquisition_entry, changes_dir, event_entry, previous_run, write_changes
from .state import Snapshot, new_acquisitions, recomputed, snapshot

log = logging.getLogger("berthwatch.update")

#: Exit code of a run that found something notable, when asked with ``fail_on_change``.
EXIT_NOTABLE = 3


@dataclass
class UpdateSettings:
    """Options of ``berthwatch update`` (the CLI fills them).

    Attributes
    ----------
    run_date : date
        The night being processed: the last date fetched and the change file's name.
    since : date, optional
        First date to fetch for an AOI and sensor with nothing processed yet.
    initial_days : int
        Without ``since``: start that many days before the run date (default 30).
    lookback_days : int
        Days before the last processed acquisition searched again (default 5:
        Sentinel-1 GRD and Sentinel-2 L2A are usually published within a day,
        later after outages or reprocessing).
    fail_on_change : bool
        Exit :data:`EXIT_NOTABLE` when something notable changed.
    keep_going : bool
        Detect and report what was fetched even when some tiles failed.
    dry_run : bool
        Show the fetch windows and the fetch's dry run (scenes, processing units); change nothing.
    """

    run_date: dt.date
    since: dt.date | None = None
    initial_days: int = 30
    lookback_days: int = 5
    fail_on_change: bool = False
    keep_going: bool = False
    dry_run: bool = False
    fetch: FetchSettings = field(default_factory=FetchSettings)


def fetch_windows(last: dict[tuple[str, str], dt.date], aois: list[str], sensors, s: UpdateSettings
                  ) -> dict[tuple[str, str], tuple[dt.date, dt.date]]:
    """(first, last) date to fetch per (AOI, sensor)."""
    default = s.since or s.run_date - dt.timedelta(days=s.initial_days)
    out = {}
    for aoi in aois:
        for sensor in sensors:
            done = last.get((aoi, sensor))
            start = done - dt.timedelta(days=s.lookback_days) if done else default
            out[(aoi, sensor)] = (min(start, s.run_date), s.run_date)
    return out


def _failed_dates(opts: RunOptions, after: Snapshot) -> dict[str, str]:
    """AOI-dates the detect stage could not compute, with its reason.

    The stage lists them in ``<out>/detections/failed.json`` (with the error);
    a date whose tiles on disk no detections file covers counts as failed too.
    """
    from ..detect.failures import read_failed

    out_dir = Path(opts.out_dir)
    on_disk: dict[str, set[Path]] = {}
    for t in find_tiles(opts.data_dir, opts.aoi_ids, opts.sensors):
        on_disk.setdefault(f"{t.aoi}/{t.date.isoformat()}", set()).add(t.path.resolve())
    failed = {}
    for key, tiles in sorted(on_disk.items()):
        rec = after.detections.get(key)
        done = {(p if p.is_absolute() else out_dir / p).resolve() for p in map(Path, rec.tiles)} if rec else set()
        if not tiles <= done:
            failed[key] = "detection failed (see the log above)"
    for key, entry in read_failed(out_dir).items():
        if key.split("/")[0] in opts.aoi_ids:
            failed[key] = str(entry.get("error") or "detection failed") + (
                "; the earlier detections are kept" if entry.get("kept_previous") else "")
    return dict(sorted(failed.items()))


def build_document(opts: RunOptions, claim: Claim, s: UpdateSettings, before: Snapshot, after: Snapshot,
                   windows: dict, failed: dict[str, str], fetch_failed: bool) -> dict:
    """The change summary of this run (see :mod:`.render` for the files)."""
    out_dir = Path(opts.out_dir)
    acqs = new_acquisitions(before, after)
    new_dates: dict[str, set[dt.date]] = {}
    for aoi, date in acqs:
        new_dates.setdefault(aoi, set()).add(date)
    events, revised, withdrawn = ch.compare(before.summary, after.summary, new_dates)
    summary = after.summary or {}
    min_clear = float((summary.get("params") or {}).get("min_clear", 0.6))
    prev = previous_run(out_dir)
    first = prev is None and before.summary is None
    verdict = {k: v for k, v in (summary.get("verdict") or {}).items() if isinstance(v, str)}
    if fetch_failed:
        failed = {"fetch": "some tiles failed to download (see the log above); continued with --keep-going",
                  **failed}
    return {
        "format_version": 1,
        "run_date": s.run_date.isoformat(),
        "generated": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "berthwatch_version": __version__,
        "previous_run": prev,
        "first_run": first,
        # the first run has nothing to compare with: its events are the baseline, not news
        "notable": bool(events) and not first,
        "claim": claim.id,
        "simulated_input": bool(summary.get("simulated_input", False)),
        "verdict": verdict,
        "report": "../report/index.html" if (out_dir / "report" / "index.html").exists() else None,
        "fetch_windows": {f"{a}/{sen}": [w[0].isoformat(), w[1].isoformat()] for (a, sen), w in windows.items()},
        "new_acquisitions": [acquisition_entry(out_dir, aoi, date, items,
                                               after.timeseries.get((aoi, date.isoformat())), min_clear)
                             for (aoi, date), items in acqs.items()],
        "events": [event_entry(out_dir, e) for e in events],
        "revised": [event_entry(out_dir, e) for e in revised],
        "withdrawn": [event_entry(out_dir, e) for e in withdrawn],
        "recomputed": recomputed(before, after),
        "failed": failed,
    }


def _detect_and_report(opts: RunOptions, claim: Claim) -> int:
    """detect over every tile on disk, then the report; detect's exit code.

    Skipped when :mod:`.unchanged` knows both are up to date (the stages are
    then not even loaded: on a night with nothing new that is most of the time).
    """
    out_dir = Path(opts.out_dir)
    idle, state = unchanged.nothing_to_do(opts, claim)
    if idle:
        log.info("update: no new tiles; detections and report are up to date")
        return 0
    unchanged.forget(out_dir)  # until this run completes
    if not find_tiles(opts.data_dir, opts.aoi_ids, opts.sensors):
        log.warning("update: no acquisitions yet for %s", ", ".join(opts.aoi_ids))
        return 0
    from ..detect import run_detect
    from ..report import run_report

    all_dates = dataclasses.replace(opts, start=None, end=None)
    code = run_detect(all_dates)
    if any(any((out_dir / "detections" / a).glob("*.geojson")) for a in {claim.origin, claim.destination,
                                                                          *opts.aoi_ids}):
        run_report(all_dates, claim)
    if code == 0:
        unchanged.record(opts, claim, state)
    return code


def run_update(opts: RunOptions, claim: Claim, s: UpdateSettings) -> int:
    """One night: fetch the new acquisitions, detect, report, write the change summary; the exit code."""
    out_dir = Path(opts.out_dir)
    with DirLock(out_dir / MANIFEST_DIR / "watch"):
        before = snapshot(out_dir)
        windows = fetch_windows(before.last_processed(), opts.aoi_ids, opts.sensors, s)
        for (aoi, sensor), (a, b) in windows.items():
            log.info("update: %s %s: fetching %s to %s", aoi, sensor, a, b)
        fetch_opts = dataclasses.replace(opts, start=min(w[0] for w in windows.values()), end=s.run_date)
        fetch_settings = dataclasses.replace(s.fetch, dry_run=s.dry_run,
                                             starts={k: w[0] for k, w in windows.items()})
        code = run_fetch(fetch_opts, fetch_settings)
        if s.dry_run:
            return code
        if code and not s.keep_going:
            log.error("update: fetch failed; detections, report and change summaries are as the previous run "
                      "left them, and the next run fetches the failed tiles again")
            return 1
        detect_code = _detect_and_report(opts, claim)
        after = snapshot(out_dir)
        failed = _failed_dates(opts, after) if detect_code else {}
        doc = build_document(opts, claim, s, before, after, windows, failed, fetch_failed=bool(code))
        json_path, md_path = write_changes(out_dir, doc)
    log.info("update: %d new AOI-date(s), %d change(s)%s; %s", len(doc["new_acquisitions"]), len(doc["events"]),
             " (notable)" if doc["notable"] else "", md_path)
    if code or detect_code:
        return 1
    return EXIT_NOTABLE if doc["notable"] and s.fail_on_change else 0


__all__ = ["EXIT_NOTABLE", "UpdateSettings", "changes_dir", "fetch_windows", "run_update"]
