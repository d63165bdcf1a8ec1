"""Report stage: observed port activity against a claimed shipment window.

Reads only ``<out>/detections/<aoi>/<date>.geojson`` (and lists
``<out>/timeseries.csv`` as an input when present) plus the claim, runs the
analysis of :mod:`pipeline.report.analysis` and writes ``<out>/report/``:
``index.html`` (self-contained, opens offline), ``report.md``,
``summary.json`` and the figures as PNG. Atomic writes, a lock on the output
folder and a manifest make reruns incremental.
"""

from __future__ import annotations

import base64
import hashlib
import datetime as dt
import json
import os
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from shapely.geometry import mapping, shape

from berthwatch import __version__

from . import analysis as an
from . import evidence as ev
from .accuracy import load_accuracy
from .basemap import load_basemap
from .analysis.method_text import limits_text, method_text
from ..core.aoi import AOI, available_aois
from ..core.atomic import write_bytes_atomic, write_json_atomic, write_text_atomic, remove_stale_temps
from ..core.claims import Claim
from ..core import observed
from ..core.contracts import S1, S2, median_composite_path, report_dir, timeseries_path
from ..core.errors import UserError
from ..core.geojson_io import read_detections
from ..core.manifest import MANIFEST_DIR, DirLock, Manifest, Task, run_tasks
from ..core.options import RunOptions

log = logging.getLogger(__name__)

#: Bump when the analysis or the report layout changes (reruns then rebuild).
REPORT_VERSION = "1.0"
SENSOR_LABEL = {S2: "Sentinel-2 (optical)", S1: "Sentinel-1 (radar)"}
FIGURES = ("timeseries-{aoi}.png", "voyages.png", "map.png", "evidence.png")


# ---------------------------------------------------------------- inputs
def detection_files(out_dir: Path, aois: list[str], start: dt.date | None, end: dt.date | None) -> list[Path]:
    """Detections files of the AOIs, within the dates when given, sorted."""
    files = []
    for aoi in aois:
        for f in sorted((Path(out_dir) / "detections" / aoi).glob("*.geojson")):
            try:
                d = dt.date.fromisoformat(f.stem)
            except ValueError:
                continue
            if (start and d < start) or (end and d > end):
                continue
            files.append(f)
    return files


def observation_from_file(path: Path) -> tuple[an.Observation, list[dict], dict]:
    """One detections file as an :class:`analysis.Observation`, plus its features (for maps)."""
    summary, feats = read_detections(path)
    try:
        date = dt.date.fromisoformat(str(summary["date"]))
    except ValueError:
        raise UserError(f"{path}: summary date {summary['date']!r} is not an ISO date") from None
    clear = summary.get("clear_fraction") or {}
    if not isinstance(clear, dict):
        raise UserError(f"{path}: clear_fraction must be a mapping sensor -> fraction")
    vessels = []
    for f in feats:
        props = f.get("properties") or {}
        if props.get("kind") != "vessel":
            continue
        c = shape(f["geometry"]).centroid
        vessels.append(an.VesselSighting(
            aoi=str(summary["aoi"]), date=date, lon=c.x, lat=c.y, length_m=float(props.get("length_m") or 0),
            width_m=float(props.get("width_m") or 0), score=float(props.get("score") or 0),
            at_berth=bool(props.get("at_berth")), sensor=str(props.get("sensor", ""))))
    teu = None
    if summary.get("teu_estimate") is not None:
        teu = (float(summary["teu_estimate"]), float(summary.get("teu_low") or summary["teu_estimate"]),
               float(summary.get("teu_high") or summary["teu_estimate"]))
    area = summary.get("container_stack_area_m2")
    obs = an.Observation(
        aoi=str(summary["aoi"]), date=date, sensors=tuple(summary.get("sensors") or ()),
        clear={str(k): float(v) for k, v in clear.items() if v is not None}, vessels=vessels,
        stack_area_m2=None if area is None else float(area), teu=teu,
        simulated=bool(summary.get("simulated", False)), source=str(path),
        zones={s: z for s, z in observed.summary_fractions(summary).items() if isinstance(z, dict)})
    meta = {"detector_version": summary.get("detector_version"), "params_hash": summary.get("params_hash"),
            "water_reference": summary.get("water_reference")}
    return obs, feats, meta


def load_observations(files: list[Path]) -> tuple[list[an.Observation], dict, dict]:
    """Observations, features by (aoi, date) and detector metadata by (aoi, date)."""
    observations, features, meta = [], {}, {}
    for f in files:
        obs, feats, m = observation_from_file(f)
        observations.append(obs)
        features[(obs.aoi, obs.date)] = feats
        meta[(obs.aoi, obs.date)] = m
    return observations, features, meta


# ---------------------------------------------------------------- analysis
@dataclass
class ReportData:
    """Everything the templates and figures show."""

    claim: Claim
    params: an.AnalysisParams
    aois: list[str]
    aoi_objects: dict[str, AOI]
    observations: list[an.Observation]
    features: dict
    coverage: dict
    gaps: dict
    calls: list[an.PortCall]
    voyages: list[an.Voyage]
    steps: list[an.StackStep]
    teu_window: dict
    rate: dict
    rate_by_aoi: dict
    verdict: an.Verdict | None   # None until :func:`decide`
    simulated: bool
    period: tuple[dt.date, dt.date]
    map_dates: dict[str, dt.date | None] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    # What lets a reader check the numbers (.evidence): filled by run_report.
    thumbnails: list = field(default_factory=list)   # contact sheet entries
    no_image: list = field(default_factory=list)     # (aoi, date) without tiles to draw
    vessels: list = field(default_factory=list)      # the vessel table
    accuracy: list = field(default_factory=list)     # the detectors' measured accuracy (.accuracy)
    links: list = field(default_factory=list)        # every data file, relative to the report
    basemaps: dict = field(default_factory=dict)     # aoi -> .basemap.Basemap (median composite)


def decide(r: ReportData, inference: dict | None = None) -> None:
    """Set ``r.verdict``, from ``inference`` (:func:`~.analysis.shuttle.infer_shuttle`) when given."""
    r.verdict = an.verdict(r.claim, r.observations, r.voyages, r.teu_window, r.params, inference=inference)


def describe(claim: Claim, observations: list[an.Observation], features: dict, aois: list[str],
             aoi_objects: dict[str, AOI], p: an.AnalysisParams, meta: dict | None = None) -> ReportData:
    """The report's data without the verdict: calls, voyages, yard steps, coverage, rates."""
    window = claim.window
    calls = an.track_port_calls(observations, p)
    voyages = an.infer_voyages(calls, claim.origin, claim.destination, p) + \
        an.infer_voyages(calls, claim.destination, claim.origin, p)
    voyages.sort(key=lambda v: v.depart[0])
    steps = an.stack_steps(observations, p)
    an.container_flows(voyages, steps)
    teu_window = an.teu_in_window([v for v in voyages if v.origin == claim.origin], window, p)
    groups = an.by_aoi(observations)
    min_gap = max(2, math.ceil(p.call_days))  # shorter gaps cannot hide a whole call
    gaps = {aoi: an.observation_gaps([o.date for o in obs if o.usable(p)], window, min_gap)
            for aoi, obs in groups.items()}
    dates = [o.date for o in observations]
    period = (min(dates), max(dates)) if dates else window
    meta = meta or {}
    versions = sorted({str(m.get("detector_version")) for m in meta.values()})
    hashes = sorted({str(m.get("params_hash")) for m in meta.values()})
    return ReportData(
        claim=claim, params=p, aois=aois, aoi_objects=aoi_objects, observations=observations, features=features,
        coverage=an.coverage(observations, window, p), gaps=gaps, calls=calls, voyages=voyages, steps=steps,
        teu_window=teu_window,
        rate=an.activity_rate_ratio(observations, [claim.origin, claim.destination], window, p),
        rate_by_aoi={a: an.activity_rate_ratio(observations, [a], window, p) for a in aois},
        verdict=None, simulated=any(o.simulated for o in observations), period=period,
        map_dates={a: choose_map_date(groups.get(a, []), window, p) for a in aois},
        provenance={"detector_versions": versions, "params_hashes": hashes, "files": len(observations),
                    "single_scene": single_scene_dates(meta)},
    )


def single_scene_dates(meta: dict) -> dict[str, list[dt.date]]:
    """Per AOI, the dates whose vessels were detected without a time-series reference water mask.

    With fewer than two observation dates of an AOI the detect stage can only
    use the date's own water mask (single-scene mode), where a ship berthed at
    a pier and the pier look alike: on the real sen2ships ports it finds about
    3 in 10 labelled vessels of a port it was not fitted on (leave-one-port-out
    recall 0.27; ``README``, "Validating the detectors").
    """
    out: dict[str, list[dt.date]] = {}
    for (aoi, date), m in sorted(meta.items()):
        if m.get("water_reference") == "single-scene":
            out.setdefault(aoi, []).append(date)
    return out


def choose_map_date(obs: list[an.Observation], window, p: an.AnalysisParams) -> dt.date | None:
    """The usable date in the window with most large berthed vessels.

    Ties go to a date with a usable Sentinel-2 image (the map then shows the
    container stacks too; a radar-only date has none), then to the clearest,
    then to the earliest.
    """
    pool = [o for o in obs if o.usable(p) and an.in_window(o.date, window)] or [o for o in obs if o.usable(p)]
    if not pool:
        return None
    best = max(pool, key=lambda o: (len(o.large_at_berth(p)), o.stack_usable(p), o.clear_fraction,
                                    -o.date.toordinal()))
    return best.date


def summary_dict(r: ReportData) -> dict:
    """The stable summary.json (keys read by other tools)."""
    c = r.claim
    cov = {aoi: {s: {k: v for k, v in row.items() if k in ("in_window", "usable_in_window", "baseline",
                                                              "usable_baseline")}
                 for s, row in per.items()} for aoi, per in r.coverage.items()}
    return {
        "claim": c.id,
        "window": [c.window_start.isoformat(), c.window_end.isoformat()],
        "verdict": r.verdict.to_dict(),
        "voyages": [v.to_dict() for v in r.voyages],
        "teu_in_window": {k: r.teu_window[k] for k in ("estimate", "low", "high")},
        "coverage": cov,
        "activity_rate_ratio": {"value": r.rate["value"], "p_value": r.rate["p_value"]},
        "simulated_input": r.simulated,
        # additions beyond the stable keys
        "period": [r.period[0].isoformat(), r.period[1].isoformat()],
        "inference": r.verdict.inference,
        "detect_probability": {k: round(v, 3) for k, v in r.verdict.detect_probability.items()},
        "activity_rate_ratio_detail": r.rate,
        "port_calls": [pc.to_dict() for pc in r.calls],
        "stack_changes": [s.to_dict() for s in r.steps],
        "claimed_teu": _claimed_teu_json(c, r.params),
        "single_scene_dates": {a: [d.isoformat() for d in ds] for a, ds in r.provenance["single_scene"].items()},
        "params": r.params.as_dict(),
        "report_version": REPORT_VERSION,
        "berthwatch_version": __version__,
    }


def _claimed_teu_json(claim: Claim, p) -> list | None:
    t = an.claimed_teu(claim, p)
    return None if t is None else [t[0], None if math.isinf(t[1]) else t[1]]


# ---------------------------------------------------------------- rendering
def _templates():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
        trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
    )


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _static(name: str) -> str:
    return (Path(__file__).parent / "static" / name).read_text(encoding="utf-8")


def leaflet_assets() -> tuple[str, str]:
    """Leaflet's JS and CSS, inline-safe (its CSS images become data URIs)."""
    static = Path(__file__).parent / "static" / "leaflet"
    js = (static / "leaflet.js").read_text(encoding="utf-8")
    js = "\n".join(line for line in js.splitlines() if not line.startswith("//# sourceMappingURL"))
    css = (static / "leaflet.css").read_text(encoding="utf-8")
    for img in sorted((static / "images").glob("*.png")):
        css = css.replace(f"images/{img.name}", _data_uri(img.read_bytes()))
    return js.replace("</script", "<\\/script"), css


def map_geojson(r: ReportData) -> dict:
    """GeoJSON layers for the interactive map: AOI outlines and the detections of each AOI's map date."""
    layers = {}
    for aoi in r.aois:
        feats = []
        obj = r.aoi_objects.get(aoi)
        if obj is not None:
            feats.append({"type": "Feature", "properties": {"kind": "aoi", "name": obj.name},
                          "geometry": mapping(obj.geometry)})
        d = r.map_dates.get(aoi)
        if d is not None:
            for f in r.features.get((aoi, d), []):
                props = dict(f.get("properties") or {})
                if props.get("kind") == "vessel":
                    props["large"] = bool(props.get("at_berth")) and (props.get("length_m") or 0) >= r.params.large_vessel_m
                feats.append({"type": "Feature", "properties": props, "geometry": f["geometry"]})
        layers[aoi] = {"date": d.isoformat() if d else None, "type": "FeatureCollection", "features": feats}
        basemap = r.basemaps.get(aoi)
        if basemap is not None:  # an image layer: the median composite, embedded, no tile server
            w, s, e, n = basemap.extent
            layers[aoi]["basemap"] = {"url": _data_uri(basemap.png()), "bounds": [[s, w], [n, e]]}
    return layers


def _generated_at() -> dt.datetime:
    """Now, or ``SOURCE_DATE_EPOCH`` when set (reproducible builds: identical inputs, identical bytes)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc)
    return dt.datetime.now(dt.timezone.utc)


def render(r: ReportData, figures: dict[str, bytes]) -> tuple[str, str, dict]:
    """(index.html, report.md, summary dict)."""
    env = _templates()
    summary = summary_dict(r)
    js, css = leaflet_assets()
    ctx = dict(r=r, an=an, s=summary, window=r.claim.window, SENSOR_LABEL=SENSOR_LABEL,
               figures={k: _data_uri(v) for k, v in figures.items()}, figure_files=sorted(figures),
               leaflet_js=js, leaflet_css=css,
               map_json=json.dumps(map_geojson(r), separators=(",", ":")).replace("</", "<\\/"),
               generated=_generated_at().strftime("%Y-%m-%d %H:%M UTC"),
               version=__version__, report_version=REPORT_VERSION,
               claimed_teu=an.claimed_teu(r.claim, r.params), step_limits=an.step_detection_limits(), math=math,
               inference_method=method_text, inference_limits=limits_text)
    html = env.get_template("report.html.j2").render(**ctx)
    md = env.get_template("report.md.j2").render(**ctx)
    return html, md, summary


def write_report(r: ReportData, dest: Path, figures: dict[str, bytes] | None = None) -> Path:
    """Write the report's files; ``figures``: those of :func:`.figures.all_figures`, when already drawn."""
    from . import figures as figs
    from .evidence_figure import evidence_figure
    from .stamp import stamp_png

    made = {**(figures if figures is not None else figs.all_figures(r)), "evidence.png": evidence_figure(r)}
    pngs = {name: stamp_png(data, r.simulated, f"berthwatch report figure {name}, claim {r.claim.id}")
            for name, data in made.items()}
    html, md, summary = render(r, pngs)
    for name, data in pngs.items():
        write_bytes_atomic(dest / name, data)
    write_json_atomic(dest / "summary.json", summary)
    write_text_atomic(dest / "report.md", md)
    write_text_atomic(dest / "index.html", html)
    return dest / "index.html"


# ---------------------------------------------------------------- stage
def report_aois(opts: RunOptions, claim: Claim) -> list[str]:
    """Claim origin and destination first, then other requested AOIs that have detections."""
    ids = [claim.origin, claim.destination]
    for a in opts.aoi_ids:
        if a not in ids and (Path(opts.out_dir) / "detections" / a).is_dir():
            ids.append(a)
    return ids


def report_code_digest() -> str:
    """Digest of the report stage's code and templates: edits re-render the report."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for f in sorted(here.rglob("*.py")) + sorted((here / "templates").glob("*")):
        if f.is_file():
            h.update(str(f.relative_to(here)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def run_report(opts: RunOptions, claim: Claim, params: an.AnalysisParams | None = None) -> Path:
    """Write ``<out>/report/`` for ``claim``; returns the path of ``index.html``."""
    p = params or an.AnalysisParams(**opts.extra.get("report_params", {}))
    out = Path(opts.out_dir)
    dest = report_dir(out)
    aois = report_aois(opts, claim)
    files = detection_files(out, aois, opts.start, opts.end)
    if not files:
        raise UserError(f"{out / 'detections'}: no detections for {', '.join(aois)}"
                        + (f" between {opts.start} and {opts.end}" if opts.start or opts.end else "")
                        + "; run `berthwatch detect` first")
    inputs = list(files)
    if claim.path is not None:
        inputs.append(Path(claim.path))
    if timeseries_path(out).exists():
        inputs.append(timeseries_path(out))
    known = {a.id: a for a in opts.aois}
    try:
        for a_id, a in available_aois().items():
            known.setdefault(a_id, a)
    except UserError:
        pass
    aoi_objects = {a: known[a] for a in aois if a in known}
    outputs = [dest / n for n in ("index.html", "report.md", "summary.json", "voyages.png", "map.png", "evidence.png")]
    outputs += [dest / f"timeseries-{a}.png" for a in aois]
    # The contact sheet's images are drawn from the tiles, and the maps over the median composite.
    thumbs = ev.planned_thumbnails([(f.parent.name, dt.date.fromisoformat(f.stem)) for f in files],
                                   Path(opts.data_dir), dest)
    outputs += ev.thumbnail_outputs(thumbs)
    inputs += ev.thumbnail_inputs(thumbs)
    inputs += [m for a in aois if (m := median_composite_path(out, a)).exists()]

    code = report_code_digest()

    def run(_task: Task) -> None:
        from . import figures as figs
        from .analysis.shuttle import infer_shuttle

        observations, features, meta = load_observations(files)
        thumbnails = Manifest(out, "report-thumbnails")
        # Three parts run at once: the thumbnails (tiles and detections only) and the voyage
        # inference in two threads, which release Python's lock in GDAL, zlib and numpy, and the
        # figures that do not show the verdict in this one (matplotlib holds the lock).
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="report") as pool:
            # thumbnails whose tiles and detections did not change are kept (all redrawn with --force)
            drawn = pool.submit(ev.write_thumbnails, thumbs, observations, features, aoi_objects, p, dest,
                                manifest=thumbnails, code=code, force=opts.force)
            r = describe(claim, observations, features, aois, aoi_objects, p, meta)
            inferred = pool.submit(infer_shuttle, claim, observations, r.voyages, an.claimed_teu(claim, p), p)
            r.basemaps = {a: b for a in aois if (b := load_basemap(out, a)) is not None}
            figures = figs.all_figures(r)
            decide(r, inferred.result())
            r.thumbnails = drawn.result()
        r.no_image = ev.dates_without_tiles(observations, r.thumbnails)
        r.vessels = ev.vessel_rows(observations, features, p)
        r.accuracy = load_accuracy(out / "validate")
        r.links = ev.data_links(out, dest, observations,
                                {f"Sentinel-2 median composite of {a} (GeoTIFF, the maps' background)": b.source
                                 for a, b in r.basemaps.items()})
        write_report(r, dest, figures)
        thumbnails.save_soon(now=True)  # once the report is complete: a failed run changes nothing beside it

    task = Task(key=f"report/{claim.id}", outputs=outputs, inputs=inputs,
                params={"report_version": REPORT_VERSION, "code": code, "claim": claim.id, "aois": aois,
                        "start": opts.start, "end": opts.end, "analysis": p.as_dict(),
                        "aoi_geometry": {a: aoi_objects[a].geometry.wkt for a in aoi_objects}},
                run=run)
    with DirLock(out):
        # left by a killed run: in the report, and of its manifest and thumbnail index
        remove_stale_temps(dest)
        remove_stale_temps(out / MANIFEST_DIR, recursive=False)
        manifest = Manifest(out, "report")
        result = run_tasks(manifest, [task], force=opts.force, stop_on_error=True)
    if result.skipped:
        log.info("report: up to date (%s)", dest)
    return dest / "index.html"
