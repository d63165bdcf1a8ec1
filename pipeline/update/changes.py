"""What changed since the previous run: events read off two report summaries, and the change files.

Events come from the report's own analysis, so the change summary never
disagrees with the report: a vessel *arrived* or *left* a berth when a port
call of ``summary.json`` (large vessels at berth tracked over consecutive
usable observations, :func:`pipeline.report.analysis.track_port_calls`) opens
or closes between two usable observations; a *yard stock step* is one of its
``stack_changes`` (:func:`pipeline.report.analysis.stack_steps`); a *verdict*
change is a changed category in its ``verdict``.

An event of the new summary is **new** when no event of the previous summary
matches it (same kind and AOI, overlapping date brackets, and for vessels a
berth within ``match_distance_m`` or the ship's length, and a compatible
length; for yard steps the same direction; one to one) and the date it was observed on (the later end of its
bracket) is an AOI-date processed for the first time in this run. Unmatched
events on older dates are **revisions**: the history was recomputed (a new
tile moved the AOI's reference) or an acquisition arrived late; events of the
previous summary that no longer exist are **withdrawn**. Revisions are listed
but are not notable.

Each event links the image thumbnails of its two dates when the report has
them (``<out>/report/thumbnails/<aoi>/<date>-s2.png`` or ``-s1.png``).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..core.contracts import S1, S2, report_dir

#: Relative error (1 sigma) of a detected 100-150 m ship's length, measured on the
#: demo scenario (see ``AnalysisParams.voyage_length_rel``); shown with every length.
LENGTH_REL_SIGMA = 0.15
#: Thumbnail file suffix per sensor, preferred first (Sentinel-2 is what a reader recognises).
THUMBNAIL_SUFFIXES = (("s2", S2), ("s1", S1))


def _date(value) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _iso(d: dt.date | None) -> str | None:
    return d.isoformat() if d else None


@dataclass
class Event:
    """One change: a vessel arrived at or left a berth, a yard stock step, or a verdict change."""

    kind: str                                   # arrival | departure | stack_step | verdict
    aoi: str | None
    date: dt.date | None                        # the first observation that shows the change
    between: tuple[dt.date | None, dt.date | None] = (None, None)
    details: dict = field(default_factory=dict)

    def overlaps(self, other: "Event") -> bool:
        a0, a1 = self.between
        b0, b1 = other.between
        lo = max(a0 or dt.date.min, b0 or dt.date.min)
        hi = min(a1 or dt.date.max, b1 or dt.date.max)
        return lo <= hi

    def text(self) -> str:
        d = self.details
        b0, b1 = (_iso(x) or "?" for x in self.between)
        if self.kind == "arrival":
            return (f"a {_length(d)} vessel arrived at a berth: not there on {b0}, there on {b1}")
        if self.kind == "departure":
            return f"a {_length(d)} vessel left its berth: there on {b0}, gone on {b1}"
        if self.kind == "stack_step":
            low, est, high = d["teu"]
            lo, hi = sorted((abs(low), abs(high)))  # signed like the area: a decrease runs -low to -high
            sign = "+" if d["delta_area_m2"] > 0 else "-"
            return (f"container stacks {d['direction']}d by {abs(d['delta_area_m2']):,.0f} m2 between {b0} and "
                    f"{b1}: {sign}{abs(est):,.0f} TEU (range {lo:,.0f} to {hi:,.0f})")
        if self.kind == "verdict":
            return "; ".join(f"{k} verdict {d['from'].get(k) or 'none'} -> {d['to'].get(k) or 'none'}"
                             for k in d["changed"])
        return self.kind

    def to_dict(self) -> dict:
        return {"kind": self.kind, "aoi": self.aoi, "date": _iso(self.date),
                "between": [_iso(x) for x in self.between], **self.details, "text": self.text()}


def _length(d: dict) -> str:
    length = d["length_m"]
    return f"{length:.0f} m (+-{LENGTH_REL_SIGMA * length:.0f} m)"


def events_of(summary: dict | None) -> list[Event]:
    """Arrivals, departures and yard stock steps of a report summary."""
    if not summary:
        return []
    out = []
    for call in summary.get("port_calls") or []:
        vessel = {"length_m": float(call["length_m"]), "lon": call["lon"], "lat": call["lat"], "call": call["id"],
                  "sensors": call.get("sensors", [])}
        a0, a1 = (_date(x) for x in call["arrive"])
        d0, d1 = (_date(x) for x in call["depart"])
        if a0 is not None:  # present at the first usable observation: no arrival was seen
            out.append(Event("arrival", call["aoi"], a1, (a0, a1), vessel))
        if d1 is not None:
            out.append(Event("departure", call["aoi"], d1, (d0, d1), vessel))
    for step in summary.get("stack_changes") or []:
        before, after = _date(step["before"]), _date(step["after"])
        out.append(Event("stack_step", step["aoi"], after, (before, after),
                         {"delta_area_m2": float(step["delta_area_m2"]), "direction": step["direction"],
                          "teu": [float(x) for x in step["teu"]]}))
    return out


def _distance(a: Event, b: Event, match_m: float) -> float | None:
    """How far apart two events are (0 for yard steps), or None when they cannot be the same event.

    A call's berth is its sighting nearest the median position, so it moves
    when sightings are added or recomputed; within the longer ship's length
    (or ``match_m``) it is the same berth. Lengths are two measurements of
    ``LENGTH_REL_SIGMA`` each; 2 sigma of their difference is allowed.
    """
    if a.kind != b.kind or a.aoi != b.aoi or not a.overlaps(b):
        return None
    if a.kind == "stack_step":
        return 0.0 if a.details["direction"] == b.details["direction"] else None
    da, db = a.details, b.details
    lat0 = math.radians((da["lat"] + db["lat"]) / 2)
    dist = math.hypot((da["lon"] - db["lon"]) * 111_320.0 * math.cos(lat0), (da["lat"] - db["lat"]) * 111_320.0)
    longer = max(da["length_m"], db["length_m"], 1.0)
    rel = abs(da["length_m"] - db["length_m"]) / longer
    if dist > max(match_m, longer) or rel > 2 * LENGTH_REL_SIGMA * math.sqrt(2):
        return None
    return dist


def match_events(old: list[Event], cur: list[Event], match_m: float) -> list[tuple[int, int]]:
    """One-to-one pairs (old index, current index) of the same event, nearest first."""
    candidates = sorted((d, i, j) for i, o in enumerate(old) for j, c in enumerate(cur)
                        if (d := _distance(o, c, match_m)) is not None)
    used_old, used_cur, pairs = set(), set(), []
    for _, i, j in candidates:
        if i not in used_old and j not in used_cur:
            used_old.add(i)
            used_cur.add(j)
            pairs.append((i, j))
    return pairs


def verdict_change(before: dict | None, after: dict | None) -> Event | None:
    """A change of any verdict category (string-valued keys of ``verdict``; reasons aside)."""
    if not before or not after or before.get("claim") != after.get("claim"):
        return None
    old, new = before.get("verdict") or {}, after.get("verdict") or {}
    keys = sorted(k for k in set(old) | set(new) if k != "reasons"
                  and isinstance(old.get(k, ""), (str, type(None))) and isinstance(new.get(k, ""), (str, type(None))))
    changed = [k for k in keys if old.get(k) != new.get(k)]
    if not changed:
        return None
    return Event("verdict", None, None, (None, None),
                 {"claim": after.get("claim"), "changed": changed, "from": {k: old.get(k) for k in keys},
                  "to": {k: new.get(k) for k in keys}})


def compare(before: dict | None, after: dict | None,
            new_dates: dict[str, set[dt.date]]) -> tuple[list[Event], list[Event], list[Event]]:
    """(new events, revisions, withdrawn events) between two report summaries.

    ``new_dates`` holds, per AOI, the dates processed for the first time in
    this run. A verdict change is always new.
    """
    params = (after or before or {}).get("params") or {}
    match_m = float(params.get("match_distance_m", 150.0))
    old, cur = events_of(before), events_of(after)
    pairs = match_events(old, cur, match_m)
    matched_old, matched_cur = {i for i, _ in pairs}, {j for _, j in pairs}
    new, revised = [], []
    for j, e in enumerate(cur):
        if j not in matched_cur:
            (new if e.date in new_dates.get(e.aoi, set()) else revised).append(e)
    withdrawn = [o for i, o in enumerate(old) if i not in matched_old]
    v = verdict_change(before, after)
    if v is not None:
        new.append(v)
    order = {"verdict": 0, "arrival": 1, "departure": 2, "stack_step": 3}
    key = lambda e: (e.date or dt.date.min, e.aoi or "", order[e.kind])  # noqa: E731
    return sorted(new, key=key), sorted(revised, key=key), sorted(withdrawn, key=key)


def thumbnail(out_dir: Path, aoi: str | None, date: dt.date | None, relative_to: Path) -> str | None:
    """The report's thumbnail of an AOI-date (Sentinel-2 first), relative to ``relative_to``; None if absent."""
    if aoi is None or date is None:
        return None
    folder = report_dir(out_dir) / "thumbnails" / aoi
    for suffix, _ in THUMBNAIL_SUFFIXES:
        path = folder / f"{date.isoformat()}-{suffix}.png"
        if path.is_file():
            return Path(*[".."] * len(relative_to.relative_to(out_dir).parts), path.relative_to(out_dir)).as_posix()
    return None
