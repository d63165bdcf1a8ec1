"""Claims: dated public statements about shipments, checked against imagery.

One YAML file per claim in ``claims/`` (or any path). See
``claims/us-nsc-2023-10-13.yaml`` for the schema by example.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError
from .shipped import resolve_shipped, shipped_dir
from .yaml_file import load_yaml_file

RELATIONS = ("at_least", "at_most", "about", "exactly")
UNITS = ("containers", "teu")


@dataclass(frozen=True)
class Statement:
    text: str
    language: str
    source: str
    url: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Quantity:
    unit: str
    value: float
    relation: str


@dataclass(frozen=True)
class Claim:
    id: str
    title: str
    speaker: dict
    date: dt.date
    statements: tuple[Statement, ...]
    window_start: dt.date
    window_end: dt.date
    origin: str
    destination: str
    quantity: Quantity | None
    vessels: tuple[dict, ...] = ()
    notes: str = ""
    path: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def window(self) -> tuple[dt.date, dt.date]:
        return self.window_start, self.window_end

    def window_days(self) -> int:
        return (self.window_end - self.window_start).days + 1


def as_date(value) -> dt.date:
    """A date from a YAML value: a date, a datetime or an ISO string (ValueError otherwise)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _date(path: Path, value, what: str) -> dt.date:
    try:
        return as_date(value)
    except ValueError:
        raise UserError(f"{path}: {what} {value!r} is not an ISO date (YYYY-MM-DD)") from None


def load_claim(path: Path | str) -> Claim:
    """Load and validate a claim YAML file; errors are one line naming the file."""
    path = Path(path)
    data = load_yaml_file(path, "claim file")
    if not isinstance(data, dict):
        raise UserError(f"{path}: a claim must be a YAML mapping")
    required = ("id", "speaker", "date", "statements", "window", "origin", "destination")
    missing = [k for k in required if k not in data]
    if missing:
        raise UserError(f"{path}: missing keys: {', '.join(missing)}")
    if not re.match(r"^[a-z0-9][a-z0-9_.-]*$", str(data["id"])):
        raise UserError(f"{path}: id {data['id']!r} must be lower-case letters, digits, '-', '_' or '.'")
    speaker = data["speaker"]
    if not isinstance(speaker, dict) or not speaker.get("name"):
        raise UserError(f"{path}: speaker must be a mapping with at least 'name'")
    stmts = data["statements"]
    if not isinstance(stmts, list) or not stmts:
        raise UserError(f"{path}: statements must be a non-empty list")
    statements = []
    for i, s in enumerate(stmts, 1):
        if not isinstance(s, dict) or not s.get("text") or not s.get("source"):
            raise UserError(f"{path}: statement {i} needs 'text' and 'source'")
        statements.append(Statement(str(s["text"]).strip(), str(s.get("language", "en")), str(s["source"]),
                                    s.get("url"), s.get("note")))
    window = data["window"]
    if not isinstance(window, dict) or "start" not in window or "end" not in window:
        raise UserError(f"{path}: window needs 'start' and 'end'")
    start = _date(path, window["start"], "window.start")
    end = _date(path, window["end"], "window.end")
    if end < start:
        raise UserError(f"{path}: window.end {end} is before window.start {start}")
    quantity = None
    if data.get("quantity") is not None:
        q = data["quantity"]
        if not isinstance(q, dict):
            raise UserError(f"{path}: quantity must be a mapping with unit, value, relation")
        if q.get("unit") not in UNITS:
            raise UserError(f"{path}: quantity.unit must be one of {', '.join(UNITS)}")
        if q.get("relation") not in RELATIONS:
            raise UserError(f"{path}: quantity.relation must be one of {', '.join(RELATIONS)}")
        try:
            value = float(q["value"])
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{path}: quantity.value must be a number") from None
        if not math.isfinite(value):
            raise UserError(f"{path}: quantity.value must be a finite number")
        if value < 0:
            raise UserError(f"{path}: quantity.value must not be negative")
        quantity = Quantity(q["unit"], value, q["relation"])
    for key in ("origin", "destination"):
        if not isinstance(data[key], str) or not data[key]:
            raise UserError(f"{path}: {key} must be an AOI id, got {data[key]!r}")
    if data["origin"] == data["destination"]:
        raise UserError(f"{path}: origin and destination are the same AOI")
    if not isinstance(data.get("vessels") or [], list):
        raise UserError(f"{path}: vessels must be a list")
    known = {"id", "title", "speaker", "date", "statements", "window", "origin", "destination",
             "quantity", "vessels", "notes"}
    return Claim(
        id=str(data["id"]), title=str(data.get("title", data["id"])), speaker=dict(speaker),
        date=_date(path, data["date"], "date"), statements=tuple(statements),
        window_start=start, window_end=end, origin=str(data["origin"]), destination=str(data["destination"]),
        quantity=quantity, vessels=tuple(data.get("vessels") or ()), notes=str(data.get("notes", "")),
        path=path, extra={k: v for k, v in data.items() if k not in known},
    )


def builtin_claim_dir() -> Path:
    return shipped_dir("berthwatch.claims")


def resolve_claim(spec: str) -> Claim:
    """A claim by path or by the id of a shipped claim."""
    return resolve_shipped(spec, "berthwatch.claims", "--claim", "claim", load_claim)
