"""Fetch stage: Sentinel-1 GRD and Sentinel-2 L2A tiles over each AOI, incremental and fault-tolerant.

For every AOI and sensor the source lists the acquisitions in the date range; the
scenes of one UTC date make one tile (mosaicked, see :mod:`.sources.common`). A tile
whose manifest entry is current (same products, processing and grid) and whose file
matches its recorded checksum is skipped, so a nightly run downloads only new
acquisitions. Downloads run on ``workers`` threads; each tile is written (atomically)
only after its data passed validation, and a failed tile never stops the others.
"""

from __future__ import annotations

import logging
import shutil
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from ..core.aoi import Grid
from ..core.atomic import atomic_path, remove_stale_temps
from ..core.contracts import item_path, tile_checksum_ok, tile_path, validate_tile, write_item, write_tile
from ..core.errors import UserError
from ..core.scrub import one_line
from ..core.manifest import DirLock, Manifest, Task
from ..core.options import RunOptions, progress, stderr
from .catalog import write_catalog
from .sources.common import RetryPolicy, TilePlan, check_bands, plan_tiles

log = logging.getLogger("berthwatch.fetch")
SOURCES = ("sentinelhub", "stac", "local")


@dataclass
class FetchSettings:
    """Options of the fetch stage (the CLI fills the first eight).

    ``timeout_s``, ``attempts`` and ``backoff_s`` override the HTTP timeout, the tries per
    request and the first retry delay (for Sentinel Hub they default to the sentinelhub
    profile's ``download_timeout_seconds``, ``max_download_attempts``, ``download_sleep_time``).
    """

    endpoint: str = "sentinelhub"
    catalog: Path | None = None
    stac_api: str | None = None
    max_cloud: float = 80.0
    orbit: str | None = None
    workers: int = 4
    dry_run: bool = False
    timeout_s: float | None = None
    attempts: int | None = None
    backoff_s: float | None = None
    #: First date per (AOI id, sensor), overriding the run's start (``berthwatch update``).
    starts: dict[tuple[str, str], object] | None = None


@dataclass
class FetchReport:
    fetched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def make_source(opts: RunOptions, settings: FetchSettings):
    """The source named by ``opts.source``, configured from ``settings``."""
    orbit = settings.orbit.lower() if settings.orbit else None
    if orbit not in (None, "ascending", "descending"):
        raise UserError(f"--orbit: {settings.orbit!r} must be ascending or descending")
    if settings.workers < 1:
        raise UserError(f"--workers: {settings.workers} must be at least 1")
    if opts.source == "sentinelhub":
        from .sources.sentinelhub import SentinelHubSource, make_config

        config = make_config(settings.endpoint)
        if settings.timeout_s is not None:
            config.download_timeout_seconds = settings.timeout_s
        if settings.attempts is not None:
            config.max_download_attempts = settings.attempts
        if settings.backoff_s is not None:
            config.download_sleep_time = settings.backoff_s
        return SentinelHubSource(config, endpoint=settings.endpoint, max_cloud=settings.max_cloud, orbit=orbit)
    policy = RetryPolicy(attempts=settings.attempts or 4,
                         base_delay=settings.backoff_s if settings.backoff_s is not None else 2.0)
    if opts.source == "stac":
        from .sources.stac import StacSource

        return StacSource(settings.stac_api, max_cloud=settings.max_cloud, orbit=orbit,
                          timeout_s=settings.timeout_s or 60.0, policy=policy)
    if opts.source == "local":
        from .sources.local import LocalSource, default_catalog

        return LocalSource(settings.catalog or default_catalog(opts.data_dir), max_cloud=100.0)
    raise UserError(f"--source: unknown source {opts.source!r}; choose from {', '.join(SOURCES)}")


def _reason(exc: BaseException) -> str:
    """One scrubbed line (scrubbed before it is shortened, so no half token survives)."""
    text = str(exc).strip() or type(exc).__name__
    if not isinstance(exc, UserError):
        text = f"{type(exc).__name__}: {text}"
    return one_line(text, limit=300)


def fetch_tile(source, plan: TilePlan, grid: Grid, tile: Path) -> None:
    """Download, validate and write one tile and its STAC item; nothing is left on failure."""
    conforming = getattr(source, "conforming_file", None)
    src = conforming(plan, grid) if conforming else None
    if src is not None:
        with atomic_path(tile) as tmp:
            shutil.copyfile(src, tmp)
    else:
        bands = source.fetch(plan, grid)
        check_bands(bands, plan.sensor, grid)
        write_tile(tile, bands, grid, plan.sensor)
    try:
        validate_tile(tile, plan.sensor, grid)
        write_item(tile, sensor=plan.sensor, grid=grid, datetime=plan.datetime, platform=plan.platform,
                   source=plan.source, product_ids=plan.product_ids, processing=plan.processing,
                   simulated=plan.simulated,
                   extra={"berthwatch:scene_datetimes": [s.datetime.isoformat() for s in plan.scenes]})
    except BaseException:
        tile.unlink(missing_ok=True)
        item_path(tile).unlink(missing_ok=True)
        raise


def _drop_stale(manifest: Manifest, task: Task) -> None:
    """Remove what an earlier run wrote for the same tile key under another name."""
    keep = {manifest.rel(p) for p in task.outputs}
    for rel, entry in list(manifest.entries.items()):
        if entry.get("key") == task.key and rel not in keep:
            (manifest.root / rel).unlink(missing_ok=True)
            manifest.forget(manifest.root / rel)


def _task(plan: TilePlan, data_dir: Path) -> tuple[Task, Path]:
    tile = tile_path(data_dir, plan.aoi.id, plan.sensor, plan.date, plan.scene_id)
    return Task(plan.key, [tile, item_path(tile)], [], plan.params(), run=lambda t: None), tile


def _is_current(manifest: Manifest, task: Task, tile: Path, force: bool) -> bool:
    return not force and manifest.is_current(task) and tile_checksum_ok(tile)


def run_fetch(opts: RunOptions, settings: FetchSettings) -> int:
    """Fetch every missing tile; return 0 when nothing failed, else 1 (successes are kept)."""
    from .sources.sentinelhub import quiet_secret_loggers

    quiet_secret_loggers()
    if settings.dry_run and opts.source == "sentinelhub" and not sentinelhub_credentials_present():
        return _dry_run_without_credentials(opts, settings)
    source = make_source(opts, settings)
    report = FetchReport()
    groups: list[tuple[str, str, Grid, list[TilePlan]]] = []
    with DirLock(opts.data_dir):
        # Temporary tiles and items of a killed run (complete or truncated) go first.
        remove_stale_temps(Path(opts.data_dir) / "tiles", Path(opts.data_dir) / ".berthwatch")
        manifest = Manifest(opts.data_dir, "fetch")
        for aoi in opts.aois:
            grid = aoi.grid()
            for sensor in opts.sensors:
                try:
                    start = (settings.starts or {}).get((aoi.id, sensor), opts.start)
                    scenes = source.search(aoi, sensor, start, opts.end)
                except UserError:
                    raise
                except Exception as exc:
                    report.failed[f"{aoi.id}/{sensor}"] = f"search failed: {_reason(exc)}"
                    log.error("%s/%s: search failed: %s", aoi.id, sensor, _reason(exc))
                    continue
                plans = plan_tiles(aoi, sensor, scenes, source.name, source.processing(sensor))
                groups.append((aoi.id, sensor, grid, plans))
        report.failed.update(getattr(source, "problems", {}))  # unreadable catalog items
        if settings.dry_run:
            _print_dry_run(groups, manifest, opts, source)
            _print_summary(report, dry_run=True)
            return 1 if report.failed else 0
        for aoi_id, sensor, grid, plans in groups:
            _fetch_group(source, aoi_id, sensor, grid, plans, manifest, opts, settings, report)
        write_catalog(opts.data_dir)  # <data>/catalog.json: one collection per AOI and sensor
    _print_summary(report)
    return 1 if report.failed else 0


def _fetch_group(source, aoi_id, sensor, grid, plans, manifest, opts, settings, report) -> None:
    todo = []
    for plan in plans:
        task, tile = _task(plan, opts.data_dir)
        if _is_current(manifest, task, tile, opts.force):
            report.skipped.append(plan.key)
        else:
            todo.append((plan, task, tile))
    if not todo:
        return
    ex = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="fetch")
    try:
        futures = {ex.submit(fetch_tile, source, plan, grid, tile): (plan, task) for plan, task, tile in todo}
        for fut in progress(as_completed(futures), f"{aoi_id} {sensor}", total=len(futures)):
            plan, task = futures[fut]
            try:
                fut.result()
            except UserError:
                raise  # credentials or account problem: every other tile would fail the same way
            except Exception as exc:
                report.failed[plan.key] = _reason(exc)
                log.error("%s: %s", plan.key, _reason(exc))
                log.debug("%s", plan.key, exc_info=log.isEnabledFor(logging.DEBUG))
                continue
            _drop_stale(manifest, task)
            manifest.record(task)
            manifest.save()
            report.fetched.append(plan.key)
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def _print_dry_run(groups, manifest: Manifest, opts: RunOptions, source) -> None:
    """One line per tile on stdout (plain columns, easy to grep), then the totals."""
    from .sources.sentinelhub import estimate_processing_units

    pu_source = source.name == "sentinelhub"
    print("# dry run: nothing downloaded")
    print("\t".join(["aoi", "sensor", "date", "status", "tile_px", "est_pu" if pu_source else "", "products"]))
    total_pu, n_new = 0.0, 0
    for aoi_id, sensor, grid, plans in groups:
        for plan in plans:
            task, tile = _task(plan, opts.data_dir)
            present = _is_current(manifest, task, tile, opts.force)
            pu = 0.0 if present or not pu_source else estimate_processing_units(sensor, grid)
            total_pu += pu
            n_new += not present
            print("\t".join([aoi_id, sensor, plan.date.isoformat(), "present" if present else "fetch",
                             f"{grid.width}x{grid.height}", f"{pu:.3f}" if pu_source else "",
                             ",".join(plan.product_ids)]))
    summary = f"# {n_new} tile(s) to fetch"
    if pu_source:
        summary += f", about {total_pu:.2f} processing units (Sentinel Hub rules; CDSE quotas count the same units)"
    print(summary)


def sentinelhub_credentials_present() -> bool:
    """Whether sentinelhub-py's configuration (environment or profile) holds an OAuth client."""
    from sentinelhub import SHConfig

    try:
        config = SHConfig()
    except KeyError:  # unknown SH_PROFILE: make_source reports it
        return True
    return bool(config.sh_client_id and config.sh_client_secret)


def _dry_run_without_credentials(opts: RunOptions, settings: FetchSettings) -> int:
    """What a dry run can say without an account: the requests per AOI and sensor and their cost.

    Sentinel Hub's catalogue needs a token, so the scenes cannot be listed; the
    tile size and processing units per tile are known offline. Ends with one
    line on stderr saying what to set, and exit code 1 (nothing was listed).
    """
    from .sources.sentinelhub import CREDENTIALS_HELP, ENDPOINTS, estimate_processing_units

    if settings.endpoint not in ENDPOINTS:
        raise UserError(f"--endpoint: unknown endpoint {settings.endpoint!r}; choose from {', '.join(ENDPOINTS)}")
    print(f"# dry run without Sentinel Hub credentials ({settings.endpoint}): scenes not listed, nothing downloaded")
    print("\t".join(["aoi", "sensor", "start", "end", "tile_px", "est_pu_per_date"]))
    for aoi in opts.aois:
        grid = aoi.grid()
        for sensor in opts.sensors:
            print("\t".join([aoi.id, sensor, str(opts.start), str(opts.end), f"{grid.width}x{grid.height}",
                             f"{estimate_processing_units(sensor, grid):.3f}"]))
    stderr.print(f"berthwatch: to list the scenes, {CREDENTIALS_HELP}; or use --source stac (no account)",
                 highlight=False, markup=False, soft_wrap=True)
    return 1


def _print_summary(report: FetchReport, dry_run: bool = False) -> None:
    if dry_run and not report.failed:
        return
    counts: dict[tuple[str, str], list[int]] = {}
    for i, keys in enumerate((report.fetched, report.skipped, list(report.failed))):
        for key in keys:
            aoi, sensor = key.split("/")[:2]
            counts.setdefault((aoi, sensor), [0, 0, 0])[i] += 1
    table = Table(title="fetch")
    for col in ("aoi", "sensor", "fetched", "skipped", "failed"):
        table.add_column(col, justify="right" if col in ("fetched", "skipped", "failed") else "left")
    for (aoi, sensor), (f, s, x) in sorted(counts.items()):
        table.add_row(aoi, sensor, str(f), str(s), f"[red]{x}[/red]" if x else "0")
    if not counts:
        table.add_row("-", "-", "0", "0", "0")
    stderr.print(table)
    for key, reason in sorted(report.failed.items()):
        stderr.print(f"[red]failed[/red] {escape(key)}: {escape(one_line(reason))}", highlight=False, soft_wrap=True)
