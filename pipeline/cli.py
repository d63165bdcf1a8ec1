"""Command-line interface: a thin layer over the stages.

Exit codes: 0 ok, 1 failure (or some AOI-dates or tiles failed, the rest kept),
2 usage error, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM). Every error is
one scrubbed line on stderr naming the file or argument (:mod:`.core.scrub`);
tracebacks only with ``-v``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from pathlib import Path
from typing import Callable, List, Optional

import typer
from typer.core import TyperGroup

try:  # typer >= 0.20 carries its own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer on click
    from click import exceptions as click_exceptions

from berthwatch import __version__

from .core.contracts import SENSORS
from .core.errors import Terminated, UsageError, UserError, describe
from .core.scrub import ScrubFilter, one_line

log = logging.getLogger("berthwatch")


class OneLineErrors(TyperGroup):
    """The command group: click's usage errors become one line on stderr too."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                                standalone_mode=False, **extra)
        except click_exceptions.NoArgsIsHelpError as exc:
            exc.show()
            code = exc.exit_code
        except click_exceptions.ClickException as exc:  # bad option value, unknown option, missing argument
            typer.echo(f"berthwatch: error: {one_line(exc.format_message())}", err=True)
            code = exc.exit_code
        except typer.Abort:
            typer.echo("berthwatch: interrupted; finished outputs are kept", err=True)
            code = 130
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(cls=OneLineErrors, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Port activity evidence from free Sentinel-1 and Sentinel-2 imagery.")
aoi_app = typer.Typer(no_args_is_help=True, help="Areas of interest.")
validate_app = typer.Typer(no_args_is_help=True, help="Measure the detectors on real labelled datasets.")
app.add_typer(aoi_app, name="aoi")
app.add_typer(validate_app, name="validate")

_state = {"verbose": 0}
SOURCES = ("sentinelhub", "stac", "local")

# ------------------------------------------------------------------ options
AoiOpt = typer.Option(None, "--aoi", help="AOI ids or GeoJSON paths; repeatable or comma list (default: all).")
StartOpt = typer.Option(None, "--start", help="First date, YYYY-MM-DD.")
EndOpt = typer.Option(None, "--end", help="Last date, YYYY-MM-DD (>= --start).")
SensorOpt = typer.Option(None, "--sensor", help=f"Sensors; repeatable or comma list: {', '.join(SENSORS)}.")
SourceOpt = typer.Option("sentinelhub", "--source", help=f"Where tiles come from: {', '.join(SOURCES)}.")
DataOpt = typer.Option(Path("data"), "--data-dir", help="Folder of tiles (fetch output).")
OutOpt = typer.Option(Path("out"), "--out-dir", help="Folder of detections and report.")
SchedulerOpt = typer.Option("processes", "--scheduler",
                            help="Where tasks run: processes (this machine), dask (a LocalCluster on 127.0.0.1), "
                                 "tcp://host:8786 or a scheduler .json (an existing Dask cluster; --data-dir and "
                                 "--out-dir must be shared with its workers).")
EndpointOpt = typer.Option("sentinelhub", "--endpoint",
                           help="sentinelhub (services.sentinel-hub.com) or cdse (Copernicus Data Space, free).")
CatalogOpt = typer.Option(None, "--catalog", help="Static STAC catalog.json for --source local.")
StacApiOpt = typer.Option(None, "--stac-api", help="STAC API URL for --source stac.")
MaxCloudOpt = typer.Option(80.0, "--max-cloud", min=0, max=100, help="S2 max scene cloud cover, %.")
OrbitOpt = typer.Option(None, "--orbit", help="S1 orbit direction: ascending or descending.")
DryRunOpt = typer.Option(False, "--dry-run", help="List scenes and estimated processing units only.")
DebugFeaturesOpt = typer.Option(False, "--debug-features",
                                help="Keep the detectors' internals (classifier features) in each feature.")
ParamsOpt = typer.Option(None, "--params", help="YAML of detector ('detect:') and analysis ('report:') "
                                                "parameters overriding the defaults.")


def _setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s" if verbose else "%(message)s"))
    handler.addFilter(ScrubFilter())
    root = logging.getLogger("berthwatch")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _version(value: bool) -> None:
    if value:
        typer.echo(f"berthwatch {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    verbose: int = typer.Option(0, "-v", "--verbose", count=True, help="More logging; tracebacks on errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    _state["verbose"] = verbose
    _setup_logging(verbose)


def _parse_date(value: str | None, name: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from None


def _dates(start: str | None, end: str | None, required: bool = False) -> tuple[dt.date | None, dt.date | None]:
    s, e = _parse_date(start, "--start"), _parse_date(end, "--end")
    if required and (s is None or e is None):
        raise UsageError("--start and --end are required")
    if s and e and e < s:
        raise UsageError(f"--end {e} is before --start {s}")
    return s, e


def _sensors(values: list[str] | None) -> tuple[str, ...]:
    if not values:
        return SENSORS
    out = []
    aliases = {"s1": "sentinel-1-grd", "s2": "sentinel-2-l2a"}
    for item in (s.strip() for v in values for s in v.split(",")):
        item = aliases.get(item.lower(), item)
        if item not in SENSORS:
            raise UsageError(f"--sensor: unknown sensor {item!r}; choose from {', '.join(SENSORS)} (or s1, s2)")
        if item not in out:
            out.append(item)
    return tuple(out)


def _options(aoi, start, end, sensor, data_dir, out_dir, source="local", require_dates=False, params=None):
    from .core.aoi import resolve_aois
    from .core.options import RunOptions
    from .params import load_params_file

    if source not in SOURCES:
        raise UsageError(f"--source: unknown source {source!r}; choose from {', '.join(SOURCES)}")
    for option, folder in (("--data-dir", data_dir), ("--out-dir", out_dir)):
        if Path(folder).exists() and not Path(folder).is_dir():
            raise UsageError(f"{option}: {folder} is a file, expected a folder")
    s, e = _dates(start, end, require_dates)
    return RunOptions(aois=resolve_aois(aoi), start=s, end=e, sensors=_sensors(sensor), data_dir=data_dir,
                      out_dir=out_dir, source=source, extra=load_params_file(params) if params else {})


def _claim_for(spec: str, opts):
    """The claim, checked to name AOIs that exist (known ids or those given with --aoi)."""
    from .core.aoi import available_aois
    from .core.claims import resolve_claim

    claim = resolve_claim(spec)
    known = set(available_aois()) | set(opts.aoi_ids)
    for role, aoi_id in (("origin", claim.origin), ("destination", claim.destination)):
        if aoi_id not in known:
            where = claim.path or spec
            raise UserError(f"{where}: {role} {aoi_id!r} names no AOI; known: {', '.join(sorted(known))}")
    return claim


def _on_sigterm(signum, frame):
    raise Terminated()


def _guard(fn: Callable[[], int | None]) -> None:
    """Run a command body; every error becomes one scrubbed line on stderr and an exit code.

    SIGTERM unwinds the body like Ctrl-C (temporary files are removed on the way
    out, worker pools shut down) and exits 143.
    """
    import signal
    import threading

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = fn()
    except KeyboardInterrupt:
        typer.echo("berthwatch: interrupted; finished outputs are kept", err=True)
        raise typer.Exit(130) from None
    except Terminated:
        typer.echo("berthwatch: terminated; finished outputs are kept", err=True)
        raise typer.Exit(143) from None
    except Exception as exc:
        if _state["verbose"]:
            log.exception("berthwatch: error")
        typer.echo(f"berthwatch: error: {describe(exc)}", err=True)
        raise typer.Exit(exc.exit_code if isinstance(exc, UserError) else 1) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    raise typer.Exit(code or 0)


# ------------------------------------------------------------------ stages
@app.command()
def fetch(
    aoi: Optional[List[str]] = AoiOpt, start: Optional[str] = StartOpt, end: Optional[str] = EndOpt,
    sensor: Optional[List[str]] = SensorOpt, source: str = SourceOpt, data_dir: Path = DataOpt,
    endpoint: str = EndpointOpt, catalog: Optional[Path] = CatalogOpt, stac_api: Optional[str] = StacApiOpt,
    max_cloud: float = MaxCloudOpt, orbit: Optional[str] = OrbitOpt,
    workers: int = typer.Option(4, "--workers", min=1, max=32, help="Concurrent downloads."),
    dry_run: bool = DryRunOpt,
    force: bool = typer.Option(False, "--force", help="Fetch again even the tiles that are up to date."),
) -> None:
    """Download tiles over each AOI for the date range."""
    def body():
        opts = _options(aoi, start, end, sensor, data_dir, Path("out"), source, require_dates=source != "local")
        opts.force = force
        from .fetch import FetchSettings, run_fetch

        settings = FetchSettings(endpoint=endpoint, catalog=catalog, stac_api=stac_api, max_cloud=max_cloud,
                                 orbit=orbit, workers=workers, dry_run=dry_run)
        return run_fetch(opts, settings)
    _guard(body)


@app.command()
def detect(
    aoi: Optional[List[str]] = AoiOpt, start: Optional[str] = StartOpt, end: Optional[str] = EndOpt,
    sensor: Optional[List[str]] = SensorOpt, data_dir: Path = DataOpt, out_dir: Path = OutOpt,
    force: bool = typer.Option(False, "--force", help="Recompute even what is up to date."),
    workers: int = typer.Option(0, "--workers", min=0, max=1024,
                                help="Worker processes (0: one per CPU, max 8; ignored for an existing cluster)."),
    scheduler: str = SchedulerOpt,
    params: Optional[Path] = ParamsOpt, debug_features: bool = DebugFeaturesOpt,
) -> None:
    """Detect vessels and container stacks in the tiles; write per-date GeoJSON, timeseries.csv, detections.gpkg."""
    def body():
        from .core.engine import parse_scheduler

        opts = _options(aoi, start, end, sensor, data_dir, out_dir, params=params)
        from .detect import run_detect

        opts.force = force
        opts.extra["scheduler"] = parse_scheduler(scheduler)
        if workers:
            opts.extra["workers"] = workers
        if debug_features:
            opts.extra["debug_features"] = True
        return run_detect(opts)
    _guard(body)


@app.command("scene-vessels")
def scene_vessels(
    scene: Path = typer.Argument(..., help="GeoTIFF of a whole scene: bands described VV (and VH), linear sigma0."),
    out: Path = typer.Option(..., "--out", help="GeoJSON file to write (vessels, WGS84)."),
    land_mask: Optional[Path] = typer.Option(None, "--land-mask",
                                             help="GeoTIFF on the scene's grid, non-zero = land (e.g. a "
                                                  "rasterised coastline)."),
    chunk: int = typer.Option(4096, "--chunk", help="Window side in pixels: sets the memory per task."),
    workers: int = typer.Option(0, "--workers", min=0, max=1024, help="Worker processes (0: one per CPU, max 8)."),
    scheduler: str = SchedulerOpt,
    params: Optional[Path] = ParamsOpt,
) -> None:
    """Sentinel-1 vessels of a raster larger than memory, window by window (same result as whole-image)."""
    def body():
        from .core.engine import parse_scheduler
        from .detect.sar_windows import run_scene_vessels
        from .params import load_params_file

        extra = load_params_file(params) if params else {}
        extra["scheduler"] = parse_scheduler(scheduler)
        if workers:
            extra["workers"] = workers
        n = run_scene_vessels(scene, out, land_mask, chunk=chunk, extra=extra)
        typer.echo(f"vessels: {n} in {out}")
    _guard(body)


ClaimOpt = typer.Option("us-nsc-2023-10-13", "--claim", help="Claim YAML path or id of a shipped claim.")


@app.command()
def report(
    claim: str = ClaimOpt, aoi: Optional[List[str]] = AoiOpt, start: Optional[str] = StartOpt,
    end: Optional[str] = EndOpt, out_dir: Path = OutOpt, params: Optional[Path] = ParamsOpt,
    data_dir: Path = typer.Option(Path("data"), "--data-dir",
                                  help="Folder of tiles, for the report's image of every date."),
) -> None:
    """Compare observed activity with a claim; write the HTML/Markdown/JSON report."""
    def body():
        opts = _options(aoi, start, end, None, data_dir, out_dir, params=params)
        the_claim = _claim_for(claim, opts)
        from .report import run_report

        path = run_report(opts, the_claim)
        typer.echo(f"report: {path}")
    _guard(body)


@app.command()
def run(
    aoi: Optional[List[str]] = AoiOpt, start: Optional[str] = StartOpt, end: Optional[str] = EndOpt,
    sensor: Optional[List[str]] = SensorOpt, source: str = SourceOpt, data_dir: Path = DataOpt,
    out_dir: Path = OutOpt, claim: str = ClaimOpt,
    endpoint: str = EndpointOpt, catalog: Optional[Path] = CatalogOpt, stac_api: Optional[str] = StacApiOpt,
    max_cloud: float = MaxCloudOpt, orbit: Optional[str] = OrbitOpt,
    workers: int = typer.Option(0, "--workers", min=0, max=1024,
                                help="Detection workers and concurrent downloads (0: one detection process per "
                                     "CPU, max 8, and 4 downloads; downloads at most 32)."),
    scheduler: str = SchedulerOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what fetch would download; no detect, report."),
    force: bool = typer.Option(False, "--force", help="Fetch and detect again even what is up to date."),
    params: Optional[Path] = ParamsOpt, debug_features: bool = DebugFeaturesOpt,
) -> None:
    """fetch, then detect, then report (every fetch option applies)."""
    def body():
        from .core.engine import parse_scheduler

        opts = _options(aoi, start, end, sensor, data_dir, out_dir, source, require_dates=source != "local",
                        params=params)
        opts.extra["scheduler"] = parse_scheduler(scheduler)
        opts.force = force
        if workers:
            opts.extra["workers"] = workers
        if debug_features:
            opts.extra["debug_features"] = True
        the_claim = _claim_for(claim, opts)
        from .detect import run_detect
        from .fetch import FetchSettings, run_fetch
        from .report import run_report

        code = run_fetch(opts, FetchSettings(endpoint=endpoint, catalog=catalog, stac_api=stac_api,
                                             max_cloud=max_cloud, orbit=orbit, workers=min(workers or 4, 32),
                                             dry_run=dry_run))
        if dry_run:
            return code
        code = run_detect(opts) or code
        typer.echo(f"report: {run_report(opts, the_claim)}")
        return code
    _guard(body)


@app.command()
def update(
    aoi: Optional[List[str]] = AoiOpt, sensor: Optional[List[str]] = SensorOpt, source: str = SourceOpt,
    data_dir: Path = DataOpt, out_dir: Path = OutOpt, claim: str = ClaimOpt,
    endpoint: str = EndpointOpt, catalog: Optional[Path] = CatalogOpt, stac_api: Optional[str] = StacApiOpt,
    max_cloud: float = MaxCloudOpt, orbit: Optional[str] = OrbitOpt,
    run_date: Optional[str] = typer.Option(None, "--run-date", help="The night processed, YYYY-MM-DD: the last "
                                           "date fetched and the change file's name (default: today, UTC)."),
    since: Optional[str] = typer.Option(None, "--since", help="First date to fetch for an AOI and sensor with "
                                        "nothing processed yet (default: 30 days before --run-date)."),
    lookback_days: int = typer.Option(5, "--lookback-days", min=0, max=365,
                                      help="Days before the last processed acquisition searched again."),
    fail_on_change: bool = typer.Option(False, "--fail-on-change",
                                        help="Exit 3 when something notable changed (arrival, departure, "
                                             "yard step, verdict)."),
    keep_going: bool = typer.Option(False, "--keep-going", help="Detect and report what was fetched even "
                                    "when some tiles failed (exit 1 all the same)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the fetch windows, scenes and processing units; "
                                 "change nothing."),
    workers: int = typer.Option(0, "--workers", min=0, max=1024,
                                help="Detection workers and concurrent downloads (as for `run`)."),
    scheduler: str = SchedulerOpt, params: Optional[Path] = ParamsOpt,
) -> None:
    """The nightly run: fetch new acquisitions, detect, report, write <out>/changes/<run-date>.md and .json.

    Exit codes: 0 done; 3 something notable changed (with --fail-on-change); 1 failure (a failed
    fetch leaves detections, report and change summaries as they were); 2 usage error.
    """
    def body():
        from .core.claims import resolve_claim
        from .core.engine import parse_scheduler

        opts = _options(aoi, None, None, sensor, data_dir, out_dir, source, params=params)
        opts.extra["scheduler"] = parse_scheduler(scheduler)
        if workers:
            opts.extra["workers"] = workers
        day = _parse_date(run_date, "--run-date") or dt.datetime.now(dt.timezone.utc).date()
        first = _parse_date(since, "--since")
        if first and first > day:
            raise UsageError(f"--since {first} is after --run-date {day}")
        the_claim = resolve_claim(claim)
        from .fetch import FetchSettings
        from .update import UpdateSettings, run_update

        fetch = FetchSettings(endpoint=endpoint, catalog=catalog, stac_api=stac_api, max_cloud=max_cloud,
                              orbit=orbit, workers=min(workers or 4, 32))
        return run_update(opts, the_claim, UpdateSettings(
            run_date=day, since=first, lookback_days=lookback_days, fail_on_change=fail_on_change,
            keep_going=keep_going, dry_run=dry_run, fetch=fetch))
    _guard(body)


@app.command()
def sample(
    scenario: Optional[Path] = typer.Option(None, "--scenario", help="Scenario YAML (default: orient-express-2023)."),
    data_dir: Path = typer.Option(Path("data/sample"), "--data-dir", help="Where the simulated catalog goes."),
    workers: int = typer.Option(0, "--workers", min=0, max=1024, help="Rendering processes (0: CPUs, max 4)."),
    scheduler: str = SchedulerOpt,
) -> None:
    """Generate a SIMULATED Sentinel-1/2 time series (static STAC catalog + truth) from a scenario."""
    def body():
        from .core.engine import parse_scheduler
        from .simulation.sample import generate_sample

        path = generate_sample(scenario, data_dir, workers or None, scheduler=parse_scheduler(scheduler))
        typer.echo(f"simulated catalog: {path}")
    _guard(body)


@app.command()
def demo(
    scenario: Optional[Path] = typer.Option(None, "--scenario", help="Scenario YAML (default: orient-express-2023)."),
    out_dir: Path = typer.Option(Path("demo-out"), "--out-dir", help="Folder for sample, tiles, detections, report."),
) -> None:
    """Run the whole pipeline offline on the embedded SIMULATED sample."""
    def body():
        from .demo import run_demo

        typer.echo(f"report: {run_demo(scenario, out_dir)}")
    _guard(body)


@app.command()
def calibrate(
    scenarios: int = typer.Option(80, "--scenarios", min=1, max=2000, help="How many random scenarios."),
    first_seed: int = typer.Option(1000, "--first-seed", min=0, help="Seed of the first scenario (then +1 each)."),
    out_dir: Path = typer.Option(Path("out/calibration"), "--out-dir", help="One folder per scenario, and the table."),
) -> None:
    """Run the pipeline on random SIMULATED scenarios and score the report against their truth."""
    def body():
        from .calibration.run import calibrate as run

        summary = run(range(first_seed, first_seed + scenarios), out_dir)
        typer.echo(f"calibration: {out_dir / 'calibration.md'} ({summary['scenarios']} scenarios, contradictions "
                   f"{summary['contradictions_activity']} activity / {summary['contradictions_quantity']} quantity)")
    _guard(body)


# ------------------------------------------------------------------ validate
def _validate(name: str, fn_path: str, path: Path, out: Path, **kwargs) -> None:
    def body():
        import importlib

        if not path.is_dir():
            raise UsageError(f"PATH: {path} is not a folder laid out like ../shared/datasets/{name}")
        module = importlib.import_module(f"berthwatch.pipeline.validation.{name}")
        metrics = getattr(module, fn_path)(path, out, **kwargs)
        typer.echo(module.format_metrics_table(metrics))
        typer.echo(f"metrics: {out / 'metrics.json'}")
    _guard(body)


@validate_app.command("sen2ships")
def validate_sen2ships(
    path: Path = typer.Argument(..., help="Folder like ../shared/datasets/sen2ships."),
    out: Path = typer.Option(Path("out/validate/sen2ships"), "--out", help="Where metrics.json and overlays go."),
    cross_validate: bool = typer.Option(False, "--cross-validate",
                                        help="Also measure the leave-one-port-out estimate (about a minute)."),
) -> None:
    """Sentinel-2 vessel detection against the sen2ships labels."""
    _validate("sen2ships", "validate_sen2ships", path, out, cross_validate=cross_validate)


@validate_app.command("opensarship")
def validate_opensarship(
    path: Path = typer.Argument(..., help="Folder like ../shared/datasets/opensarship."),
    out: Path = typer.Option(Path("out/validate/opensarship"), "--out", help="Where metrics.json and overlays go."),
) -> None:
    """Sentinel-1 vessel detection against OpenSARShip's AIS-matched ships."""
    _validate("opensarship", "validate_opensarship", path, out)


# ------------------------------------------------------------------ aoi
@aoi_app.command("list")
def aoi_list() -> None:
    """List the known AOIs."""
    def body():
        from .core.aoi import available_aois

        for a in available_aois().values():
            d = a.describe()
            typer.echo(f"{a.id:<12} {a.role:<12} {a.country:<3} EPSG:{d['utm_epsg']} "
                       f"{d['grid_px'][0]}x{d['grid_px'][1]} px  {a.name}")
    _guard(body)


@aoi_app.command("show")
def aoi_show(aoi_id: str = typer.Argument(..., help="AOI id or GeoJSON path.")) -> None:
    """Show everything known about one AOI."""
    def body():
        from .core.aoi import resolve_aois

        typer.echo(json.dumps(resolve_aois([aoi_id])[0].describe(), indent=2, ensure_ascii=False))
    _guard(body)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
