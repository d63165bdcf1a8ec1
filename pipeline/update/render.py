"""The change summary of one run, as JSON (stable keys) and Markdown, written atomically.

``<out>/changes/<run-date>.json`` and ``.md`` (``<run-date>-2`` and so on for a
further run on the same date), and the same content as ``latest.json`` and
``latest.md``. Links (thumbnails, the report) are relative to the changes folder.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from ..core.atomic import write_json_atomic, write_text_atomic
from ..core.contracts import S1, S2
from ..core.errors import UserError
from .changes import Event, thumbnail

FORMAT_VERSION = 1
SENSOR_SHORT = {S2: "S2", S1: "S1"}


def changes_dir(out_dir: Path) -> Path:
    return Path(out_dir) / "changes"


def _num(value: str | None, kind=float):
    if value in (None, ""):
        return None
    try:
        return kind(float(value))
    except ValueError:
        return None


def _flag(value: str | None, default: bool) -> bool:
    """A true/false column of ``timeseries.csv`` (the detect stage's usable rule), else ``default``."""
    if value in (None, ""):
        return default
    return str(value).strip().lower() in ("true", "1", "yes")


def acquisition_entry(out_dir: Path, aoi: str, date: dt.date, acqs, row: dict | None, min_clear: float) -> dict:
    """One new AOI-date: its sensors and scenes, how clear it was and what was counted on it."""
    row = row or {}
    clear = {s: _num(row.get(f"clear_fraction_{SENSOR_SHORT[s].lower()}")) for s in (S2, S1)}
    clear = {s: v for s, v in clear.items() if v is not None}
    teu = [_num(row.get(k)) for k in ("teu_low", "teu_estimate", "teu_high")]
    return {
        "aoi": aoi, "date": date.isoformat(),
        "sensors": sorted({a.sensor for a in acqs}), "scenes": sorted({a.scene for a in acqs}),
        "clear_fraction": clear,
        # a date too cloudy to tell whether a ship is there says nothing about arrivals or departures
        "usable": _flag(row.get("usable"), bool(clear) and max(clear.values()) >= min_clear),
        "vessels": _num(row.get("vessels"), int), "vessels_at_berth": _num(row.get("vessels_at_berth"), int),
        "large_vessels": _num(row.get("large_vessels"), int),
        "teu": None if teu[1] is None else teu,
        "thumbnail": thumbnail(out_dir, aoi, date, changes_dir(out_dir)),
    }


def event_entry(out_dir: Path, e: Event) -> dict:
    d = e.to_dict()
    d["thumbnail"] = thumbnail(out_dir, e.aoi, e.date, changes_dir(out_dir))
    d["thumbnail_before"] = thumbnail(out_dir, e.aoi, e.between[0], changes_dir(out_dir))
    return d


def next_paths(out_dir: Path, run_date: dt.date) -> tuple[Path, Path]:
    """``<run-date>.json``/``.md``, or ``<run-date>-N`` when a run of that date already wrote one."""
    folder = changes_dir(out_dir)
    stem, n = run_date.isoformat(), 1
    while (folder / f"{stem}.json").exists() or (folder / f"{stem}.md").exists():
        n += 1
        stem = f"{run_date.isoformat()}-{n}"
    return folder / f"{stem}.json", folder / f"{stem}.md"


def previous_run(out_dir: Path) -> dict | None:
    """Run date and file of the last change summary written (``latest.json``), if any."""
    path = changes_dir(out_dir) / "latest.json"
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return {"run_date": doc["run_date"], "generated": doc.get("generated"), "file": doc.get("file")}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: unreadable change summary ({exc}); delete it to start afresh") from None


def write_changes(out_dir: Path, doc: dict) -> tuple[Path, Path]:
    """Write the run's JSON and Markdown, then ``latest.*`` (each file atomically)."""
    json_path, md_path = next_paths(out_dir, dt.date.fromisoformat(doc["run_date"]))
    doc = {**doc, "file": json_path.name}
    md = to_markdown(doc)
    write_json_atomic(json_path, doc)
    write_text_atomic(md_path, md)
    write_json_atomic(changes_dir(out_dir) / "latest.json", doc)
    write_text_atomic(changes_dir(out_dir) / "latest.md", md)
    return json_path, md_path


# ---------------------------------------------------------------- Markdown
def _link(label: str, href: str | None) -> str:
    return f"[{label}]({href})" if href else ""


def _fraction(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f} %"


def _event_line(e: dict) -> str:
    where = f"**{e['aoi']} {e['date']}**: " if e.get("aoi") else "**verdict**: "
    links = " ".join(x for x in (_link("before", e.get("thumbnail_before")), _link("after", e.get("thumbnail")))
                     if x)
    return f"- {where}{e['text']}" + (f" ({links})" if links else "")


def to_markdown(doc: dict) -> str:
    lines = [f"# berthwatch: changes on {doc['run_date']}", ""]
    if doc.get("simulated_input"):
        lines += ["**SIMULATED input: not Sentinel data and not evidence.**", ""]
    prev = doc.get("previous_run")
    since = f"since the run of {prev['run_date']}" if prev else "first run (no earlier run to compare with)"
    n_acq = len(doc["new_acquisitions"])
    lines.append(f"Claim `{doc.get('claim')}`, {since}: {n_acq} new AOI-date(s) processed, "
                 f"{len(doc['events'])} change(s) found"
                 + (", **notable**." if doc["notable"] else "."))
    if doc.get("verdict"):
        lines.append("Verdict now: " + ", ".join(f"{k} {v}" for k, v in doc["verdict"].items()) + ".")
    if doc.get("report"):
        lines.append(f"Report: {_link('index.html', doc['report'])}.")
    lines.append("")
    lines += ["## Changes", ""]
    lines += [_event_line(e) for e in doc["events"]] or ["None."]
    lines += ["", "## New acquisitions", ""]
    if doc["new_acquisitions"]:
        lines += ["| AOI | date | sensors | clear | usable | vessels (at berth, >= 80 m) | TEU (range) | image |",
                  "|---|---|---|---|---|---|---|---|"]
        for a in doc["new_acquisitions"]:
            clear = ", ".join(f"{SENSOR_SHORT.get(s, s)} {_fraction(v)}" for s, v in a["clear_fraction"].items())
            counts = ("n/a" if a["vessels"] is None
                      else f"{a['vessels']} ({a['vessels_at_berth']}, {a['large_vessels']})")
            teu = "n/a" if not a["teu"] else f"{a['teu'][1]:,.0f} ({a['teu'][0]:,.0f}-{a['teu'][2]:,.0f})"
            lines.append(f"| {a['aoi']} | {a['date']} | {', '.join(SENSOR_SHORT.get(s, s) for s in a['sensors'])} "
                         f"| {clear or 'n/a'} | {'yes' if a['usable'] else 'no'} | {counts} | {teu} "
                         f"| {_link('thumbnail', a['thumbnail']) or '-'} |")
        lines += ["", "A date that is not usable (clear fraction below the report's `min_clear`) neither shows "
                      "nor rules out an arrival or a departure; its counts are left empty (n/a). Counts are what "
                      "the detectors found; their recall and precision are in the README (\"Validating the "
                      "detectors\")."]
    else:
        lines.append("None.")
    if doc["revised"] or doc["withdrawn"]:
        lines += ["", "## Revised history (not notable)", "",
                  "Earlier dates were recomputed (a new tile moved the AOI's reference) or an acquisition "
                  "arrived late; these events differ from the previous run's report:", ""]
        lines += [_event_line(e) for e in doc["revised"]]
        lines += [_event_line({**e, "text": "no longer found: " + e["text"]}) for e in doc["withdrawn"]]
    if doc["recomputed"]:
        reasons: dict[str, list[str]] = {}
        for key, why in doc["recomputed"].items():
            reasons.setdefault(why, []).append(key)
        lines += ["", "## Recomputed", ""]
        lines += [f"- {why}: {', '.join(keys)}" for why, keys in reasons.items()]
    if doc["failed"]:
        lines += ["", "## Failed", ""]
        lines += [f"- {key}: {reason}" for key, reason in doc["failed"].items()]
    lines += ["", f"_Generated {doc['generated']} by berthwatch {doc['berthwatch_version']}._", ""]
    return "\n".join(lines)
