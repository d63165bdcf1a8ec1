"""Files shipped as package data (AOIs, claims, scenarios), found by name or path."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Callable, TypeVar

from .errors import UserError

T = TypeVar("T")


def shipped_dir(package: str) -> Path:
    """Folder of a data package such as ``berthwatch.claims``."""
    return Path(str(resources.files(package)))


def resolve_shipped(spec: Path | str, package: str, option: str, kind: str, load: Callable[[Path], T]) -> T:
    """Load ``spec`` as a YAML path, else as the name of a file shipped in ``package``.

    Raises
    ------
    UserError
        Naming ``option`` and the shipped names when neither exists.
    """
    p = Path(spec)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return load(p)
    shipped = shipped_dir(package) / f"{spec}.yaml"
    if shipped.exists():
        return load(shipped)
    known = sorted(f.stem for f in shipped_dir(package).glob("*.yaml"))
    raise UserError(f"{option}: no {kind} file or shipped {kind} {str(spec)!r}; shipped: {', '.join(known)}")
