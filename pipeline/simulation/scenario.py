"""Simulation scenarios: YAML files describing what the simulated sample shows.

A scenario names the AOIs, the acquisition schedule of each sensor, the port
calls (a vessel alongside a berth on inclusive dates), the container-yard
events and the background traffic. See ``scenarios/orient-express-2023.yaml``
for the schema by example::

    name: orient-express-2023
    seed: 7
    start: 2023-08-01
    end: 2023-10-31
    aois: [rajin, dunai]
    acquisitions:
      sentinel-2-l2a: {first: 2023-08-05, every_days: 5, cloud_probability: 0.4}
      sentinel-1-grd: {first: 2023-08-01, every_days: 12}
      rajin: {sentinel-2-l2a: {first: 2023-08-05}}      # per-AOI override
    layout: default
    background_vessels: {rajin: 2, dunai: 1}
    port_calls:
      - {vessel: Angara, length_m: 120, beam_m: 18, aoi: rajin,
         arrive: 2023-08-24, depart: 2023-08-27, deck_teu_out: 300}
    yard_events:
      - {aoi: rajin, date: 2023-08-25, teu: 300}

Optional fields (all additive, older files stay valid): a sensor schedule may
be a list of tracks; a track may give ``time`` (UTC ``HH:MM``) and
``platforms`` (cycled); a port call may give ``berth``, ``moves`` (list of
``{date, berth}``) and ``note``; a yard event may give ``yard`` and ``note``;
``yard_initial_teu: {aoi: {yard: teu}}`` overrides the layout's starting
inventory. Every error is one line naming the file and the field.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..core.aoi import available_aois
from ..core.claims import as_date
from ..core.contracts import S1, S2, SENSORS
from ..core.errors import UserError
from ..core.shipped import resolve_shipped, shipped_dir
from .layout import layout_for
from .world import ScenarioConflict, assign_berths, yard_inventory

DEFAULT_SCENARIO = "orient-express-2023"
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
LAYOUTS = ("default",)
MAX_DAYS = 800

#: Typical overpass times (UTC) when a track gives none: Sentinel-2 R003 over Rajin
#: ~02:21, R103 over Dunai ~02:11; Sentinel-1A ascending ~09:10 (fact sheet, section 4).
DEFAULT_TIMES = {
    S2: {"rajin": dt.time(2, 21), "dunai": dt.time(2, 11), None: dt.time(2, 15)},
    S1: {None: dt.time(9, 10)},
}
DEFAULT_PLATFORMS = {S2: ("sentinel-2a", "sentinel-2b"), S1: ("sentinel-1a",)}


@dataclass(frozen=True)
class Track:
    """A repeating acquisition: ``first`` and every ``every_days`` after it."""

    first: dt.date
    every_days: int
    time: dt.time
    platforms: tuple[str, ...]
    cloud_probability: float = 0.0

    def dates(self, start: dt.date, end: dt.date) -> list[dt.date]:
        out, d = [], self.first
        if d < start:
            d += dt.timedelta(days=-(-(start - d).days // self.every_days) * self.every_days)
        while d <= end:
            out.append(d)
            d += dt.timedelta(days=self.every_days)
        return out

    def platform_on(self, date: dt.date) -> str:
        k = (date - self.first).days // self.every_days
        return self.platforms[k % len(self.platforms)]


@dataclass(frozen=True)
class BerthMove:
    date: dt.date
    berth: str


@dataclass(frozen=True)
class PortCall:
    id: str
    vessel: str
    length_m: float
    beam_m: float
    aoi: str
    arrive: dt.date
    depart: dt.date
    deck_teu_out: float = 0.0
    berth: str | None = None
    moves: tuple[BerthMove, ...] = ()
    note: str = ""

    def on(self, date: dt.date) -> bool:
        return self.arrive <= date <= self.depart


@dataclass(frozen=True)
class YardEvent:
    aoi: str
    date: dt.date
    teu: float
    yard: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Scenario:
    name: str
    seed: int
    start: dt.date
    end: dt.date
    aois: tuple[str, ...]
    #: ``schedule[aoi][sensor]`` -> tracks (empty: the sensor never looks).
    schedule: dict[str, dict[str, tuple[Track, ...]]]
    layout: str
    background_vessels: dict[str, int]
    port_calls: tuple[PortCall, ...]
    yard_events: tuple[YardEvent, ...]
    yard_initial_teu: dict[str, dict[str, float]] = field(default_factory=dict)
    path: Path | None = None
    sha256: str = ""

    def acquisitions(self, aoi: str) -> list[tuple[str, dt.date, Track]]:
        """(sensor, date, track) of every acquisition over ``aoi``, by date then sensor."""
        out = []
        for sensor, tracks in self.schedule[aoi].items():
            for track in tracks:
                out.extend((sensor, d, track) for d in track.dates(self.start, self.end))
        return sorted(out, key=lambda x: (x[1], x[0], x[2].time))


# ------------------------------------------------------------------ parsing helpers
class _Loader(yaml.SafeLoader):
    """Safe YAML without implicit timestamps: dates stay text and are checked here, with the field named."""


_Loader.yaml_implicit_resolvers = {
    k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"] for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Checker:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, problem: str) -> UserError:
        return UserError(f"{self.path}: {where}: {problem}")

    def mapping(self, value, where: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a mapping, got {type(value).__name__}")
        for k in value:
            if k not in allowed:
                raise self.fail(f"{where}.{k}" if where else str(k),
                                f"unknown field; allowed: {', '.join(allowed)}")
        for k in required:
            if value.get(k) is None:
                raise self.fail(f"{where}.{k}" if where else k, "required field is missing")
        return value

    def date(self, value, where: str) -> dt.date:
        try:
            return as_date(value)
        except ValueError:
            raise self.fail(where, f"{value!r} is not a date (YYYY-MM-DD)") from None

    def number(self, value, where: str, lo: float | None = None, hi: float | None = None,
               integer: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            raise self.fail(where, f"{value!r} is not {'an integer' if integer else 'a number'}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            rng = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
            raise self.fail(where, f"{value} is outside {rng}")
        return value

    def text(self, value, where: str, pattern: re.Pattern | None = None) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"{value!r} must be a non-empty string")
        if pattern and not pattern.match(value):
            raise self.fail(where, f"{value!r} must be lower-case letters, digits, '-', '_' or '.'")
        return value.strip()

    def time(self, value, where: str) -> dt.time:
        if isinstance(value, int) and not isinstance(value, bool):  # YAML 1.1 reads 02:21 as sexagesimal
            value = f"{value // 60:02d}:{value % 60:02d}"
        try:
            return dt.time.fromisoformat(str(value))
        except ValueError:
            raise self.fail(where, f"{value!r} is not a UTC time (HH:MM)") from None


_TRACK_FIELDS = ("first", "every_days", "time", "platforms", "cloud_probability")


def _track(c: _Checker, raw: dict, where: str, sensor: str, aoi: str) -> Track:
    c.mapping(raw, where, _TRACK_FIELDS, ("first", "every_days"))
    if sensor != S2 and raw.get("cloud_probability") is not None:
        raise c.fail(f"{where}.cloud_probability", "only Sentinel-2 sees clouds")
    platforms = raw.get("platforms") or DEFAULT_PLATFORMS[sensor]
    if isinstance(platforms, str):
        platforms = [platforms]
    if not isinstance(platforms, (list, tuple)) or not all(isinstance(p, str) and p for p in platforms):
        raise c.fail(f"{where}.platforms", "must be a list of platform names, e.g. [sentinel-2a, sentinel-2b]")
    times = DEFAULT_TIMES[sensor]
    return Track(
        first=c.date(raw["first"], f"{where}.first"),
        every_days=int(c.number(raw["every_days"], f"{where}.every_days", 1, 366, integer=True)),
        time=c.time(raw["time"], f"{where}.time") if raw.get("time") is not None else times.get(aoi, times[None]),
        platforms=tuple(platforms),
        cloud_probability=float(c.number(raw.get("cloud_probability", 0.0), f"{where}.cloud_probability", 0, 1)),
    )


def _merge(base, override):
    """Per-AOI override: a mapping updates the default mapping field-wise, anything else replaces it."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **override}
    return override


def _schedule(c: _Checker, raw, aois: tuple[str, ...]) -> dict[str, dict[str, tuple[Track, ...]]]:
    c.mapping(raw, "acquisitions", SENSORS + aois)
    if not any(s in raw for s in SENSORS):
        raise c.fail("acquisitions", f"needs at least one of {', '.join(SENSORS)}")
    out = {}
    for aoi in aois:
        override = raw.get(aoi) or {}
        c.mapping(override, f"acquisitions.{aoi}", SENSORS)
        out[aoi] = {}
        for sensor in SENSORS:
            spec = raw.get(sensor)
            where = f"acquisitions.{sensor}"
            if sensor in override:
                spec, where = _merge(spec, override[sensor]), f"acquisitions.{aoi}.{sensor}"
            if spec is None:
                out[aoi][sensor] = ()
                continue
            specs = spec if isinstance(spec, list) else [spec]
            out[aoi][sensor] = tuple(
                _track(c, s, f"{where}[{i}]" if isinstance(spec, list) else where, sensor, aoi)
                for i, s in enumerate(specs))
    return out


def _per_aoi_counts(c: _Checker, raw, aois, where: str) -> dict[str, int]:
    raw = raw or {}
    c.mapping(raw, where, aois)
    return {a: int(c.number(raw.get(a, 0), f"{where}.{a}", 0, 50, integer=True)) for a in aois}


_CALL_FIELDS = ("vessel", "length_m", "beam_m", "aoi", "arrive", "depart", "deck_teu_out", "berth", "moves",
                "note", "id")
_EVENT_FIELDS = ("aoi", "date", "teu", "yard", "note")


def load_scenario(path: Path | str) -> Scenario:
    """Load and validate a scenario YAML file.

    Raises
    ------
    UserError
        One line: ``<file>: <field>: <problem>``.
    """
    path = Path(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such scenario file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not a scenario YAML file") from None
    try:
        data = yaml.load(blob.decode("utf-8"), Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UserError(f"{path}: not valid YAML{f' at line {mark.line + 1}' if mark else ''}") from None
    c = _Checker(path)
    top = ("name", "seed", "start", "end", "aois", "acquisitions", "layout", "background_vessels", "port_calls",
           "yard_events", "yard_initial_teu", "description")
    c.mapping(data, "", top, ("name", "seed", "start", "end", "aois", "acquisitions"))
    name = c.text(data["name"], "name", NAME)
    seed = int(c.number(data["seed"], "seed", 0, 2**32 - 1, integer=True))
    start, end = c.date(data["start"], "start"), c.date(data["end"], "end")
    if end < start:
        raise c.fail("end", f"{end} is before start {start}")
    if (end - start).days > MAX_DAYS:
        raise c.fail("end", f"the scenario spans {(end - start).days} days; at most {MAX_DAYS}")

    known = available_aois()
    aois_raw = data["aois"]
    if not isinstance(aois_raw, list) or not aois_raw:
        raise c.fail("aois", "must be a non-empty list of AOI ids")
    for i, a in enumerate(aois_raw):
        if a not in known:
            raise c.fail(f"aois[{i}]", f"unknown AOI {a!r}; known: {', '.join(sorted(known))}")
    aois = tuple(dict.fromkeys(aois_raw))
    schedule = _schedule(c, data["acquisitions"], aois)
    layout = data.get("layout", "default")
    if layout not in LAYOUTS:
        raise c.fail("layout", f"{layout!r} unknown; available: {', '.join(LAYOUTS)}")
    background = _per_aoi_counts(c, data.get("background_vessels"), aois, "background_vessels")

    layouts = {a: layout_for(known[a]) for a in aois}

    calls = []
    for i, raw in enumerate(data.get("port_calls") or []):
        w = f"port_calls[{i}]"
        c.mapping(raw, w, _CALL_FIELDS, ("vessel", "length_m", "beam_m", "aoi", "arrive", "depart"))
        aoi = raw["aoi"]
        if aoi not in aois:
            raise c.fail(f"{w}.aoi", f"{aoi!r} is not one of the scenario's aois ({', '.join(aois)})")
        arrive, depart = c.date(raw["arrive"], f"{w}.arrive"), c.date(raw["depart"], f"{w}.depart")
        if depart < arrive:
            raise c.fail(f"{w}.depart", f"{depart} is before arrive {arrive}")
        length = float(c.number(raw["length_m"], f"{w}.length_m", 10, 400))
        beam = float(c.number(raw["beam_m"], f"{w}.beam_m", 3, 70))
        if beam >= length:
            raise c.fail(f"{w}.beam_m", f"{beam} m is not narrower than length_m {length} m")
        berths = layouts[aoi].berth_groups()
        berth = raw.get("berth")
        if berth is not None and berth not in berths:
            raise c.fail(f"{w}.berth", f"{berth!r} unknown at {aoi}; berths: {', '.join(berths)}")
        moves = []
        for j, m in enumerate(raw.get("moves") or []):
            mw = f"{w}.moves[{j}]"
            c.mapping(m, mw, ("date", "berth"), ("date", "berth"))
            md = c.date(m["date"], f"{mw}.date")
            if not (arrive < md <= depart):
                raise c.fail(f"{mw}.date", f"{md} is not after arrive {arrive} and on or before depart {depart}")
            if m["berth"] not in berths:
                raise c.fail(f"{mw}.berth", f"{m['berth']!r} unknown at {aoi}; berths: {', '.join(berths)}")
            moves.append(BerthMove(md, m["berth"]))
        call_id = raw.get("id") or f"{aoi}-{arrive.isoformat()}-{re.sub(r'[^a-z0-9]+', '-', str(raw['vessel']).lower()).strip('-')}"
        calls.append(PortCall(
            id=str(call_id), vessel=c.text(raw["vessel"], f"{w}.vessel"), length_m=length, beam_m=beam, aoi=aoi,
            arrive=arrive, depart=depart,
            deck_teu_out=float(c.number(raw.get("deck_teu_out", 0), f"{w}.deck_teu_out", 0, 5000)),
            berth=berth, moves=tuple(sorted(moves, key=lambda m: m.date)), note=str(raw.get("note", "")),
        ))
    ids = [pc.id for pc in calls]
    if len(set(ids)) != len(ids):
        dup = next(x for x in ids if ids.count(x) > 1)
        raise c.fail(f"port_calls[{ids.index(dup)}].id", f"port call id {dup!r} is used twice")
    for i, a in enumerate(calls):
        for b in calls[:i]:
            if a.vessel == b.vessel and a.arrive <= b.depart and b.arrive <= a.depart:
                raise c.fail(f"port_calls[{i}]", f"{a.vessel} is already in port {b.aoi} from {b.arrive} to {b.depart}")

    events = []
    for i, raw in enumerate(data.get("yard_events") or []):
        w = f"yard_events[{i}]"
        c.mapping(raw, w, _EVENT_FIELDS, ("aoi", "date", "teu"))
        if raw["aoi"] not in aois:
            raise c.fail(f"{w}.aoi", f"{raw['aoi']!r} is not one of the scenario's aois ({', '.join(aois)})")
        yards = layouts[raw["aoi"]].yard_names()
        if raw.get("yard") is not None and raw["yard"] not in yards:
            raise c.fail(f"{w}.yard", f"{raw['yard']!r} unknown at {raw['aoi']}; yards: {', '.join(yards)}")
        events.append(YardEvent(raw["aoi"], c.date(raw["date"], f"{w}.date"),
                                float(c.number(raw["teu"], f"{w}.teu", -20000, 20000)),
                                raw.get("yard"), str(raw.get("note", ""))))

    initial_raw = data.get("yard_initial_teu") or {}
    c.mapping(initial_raw, "yard_initial_teu", aois)
    initial = {}
    for a in aois:
        per = initial_raw.get(a) or {}
        c.mapping(per, f"yard_initial_teu.{a}", tuple(layouts[a].yard_names()))
        initial[a] = {y: float(c.number(v, f"yard_initial_teu.{a}.{y}", 0, 50000)) for y, v in per.items()}

    scenario = Scenario(
        name=name, seed=seed, start=start, end=end, aois=aois, schedule=schedule, layout=layout,
        background_vessels=background, port_calls=tuple(calls), yard_events=tuple(events),
        yard_initial_teu=initial, path=path, sha256=hashlib.sha256(blob).hexdigest(),
    )
    _check_feasible(c, scenario, layouts)
    return scenario


def _check_feasible(c: _Checker, sc: Scenario, layouts) -> None:
    """Yards never below empty or above capacity; berths never double-booked."""
    for aoi in sc.aois:
        try:
            yard_inventory(sc, layouts[aoi], aoi, sc.end)
            assign_berths(sc, layouts[aoi], aoi)
        except ScenarioConflict as exc:
            raise c.fail(exc.where, exc.problem) from None


def builtin_scenario_dir() -> Path:
    return shipped_dir("berthwatch.scenarios")


def resolve_scenario(spec: Path | str | None) -> Scenario:
    """A scenario by path, by the name of a shipped one, or the default when ``None``."""
    return resolve_shipped(DEFAULT_SCENARIO if spec is None else spec, "berthwatch.scenarios", "--scenario",
                           "scenario", load_scenario)
