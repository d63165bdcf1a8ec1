"""Options shared by the stages, built by the CLI (or by code calling the stages)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .aoi import AOI
from .contracts import SENSORS

T = TypeVar("T")
stderr = Console(stderr=True)


@dataclass
class RunOptions:
    aois: list[AOI]
    start: dt.date | None = None
    end: dt.date | None = None
    sensors: tuple[str, ...] = SENSORS
    data_dir: Path = Path("data")
    out_dir: Path = Path("out")
    source: str = "sentinelhub"
    force: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def aoi_ids(self) -> list[str]:
        return [a.id for a in self.aois]


def progress(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar on stderr (quiet when logging is above INFO)."""
    items = list(items) if total is None else items
    total = len(items) if total is None else total
    if logging.getLogger("berthwatch").getEffectiveLevel() > logging.INFO or total == 0:
        yield from items
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=stderr, transient=False) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)
