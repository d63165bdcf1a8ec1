"""The shape of the code: which part may import which, and no import cycles.

The tree is the architecture (README, "Architecture"): ``detectors`` are pure
image processing; ``pipeline/core`` holds the foundations every stage shares;
the stages (``fetch``, ``detect``, ``report``, ``validation``) build only on
those two, never on each other or on the simulated world
(``pipeline/simulation``); the notebook helpers (``pipeline/review``) read what
the stages wrote; the entry points (``cli``, ``demo``, ``params``) may use
everything. Every import counts, also those inside functions and under
``TYPE_CHECKING``: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Source folder of each top-level package part (see pyproject's package-dir).
FOLDERS = {"berthwatch": ROOT / "berthwatch", "berthwatch.pipeline": ROOT / "pipeline",
           "berthwatch.detectors": ROOT / "detectors"}

STAGES = ("fetch", "detect", "report", "validation")
FOUNDATIONS = ("berthwatch", "detectors", "core")
#: Part -> the parts it may import (besides itself).
ALLOWED = {
    "detectors": set(),
    "core": set(),
    **{stage: {"core", "detectors", "berthwatch"} for stage in STAGES},
    "simulation": {"core", "berthwatch"},
    "review": {"core", "detectors", "berthwatch", *STAGES},
    # the nightly watch runs fetch, detect and report; it never sees the simulated world
    "update": {"core", "detectors", "berthwatch", "fetch", "detect", "report"},
    # runs the whole pipeline on simulated scenarios, like the demo
    "calibration": {"core", "detectors", "berthwatch", "simulation", *STAGES},
    "entry": None,  # cli, demo, params: anything
}


def _modules() -> dict[str, Path]:
    mods = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if package == "berthwatch" and parts:
                continue  # berthwatch/ holds only the root __init__
            mods[".".join([package, *parts])] = path
    return mods


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _imports(name: str) -> set[str]:
    """Berthwatch modules imported anywhere in module ``name`` (relative imports resolved)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    package = name if _is_package(name) else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in MODULES else prefix for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:  # `import berthwatch.pipeline.core.aoi as x`, names of modules
                t = t.rpartition(".")[0]
            if t.startswith("berthwatch"):
                found.add(t)
    found.discard(name)
    return found


def _part(name: str) -> str:
    if name == "berthwatch":
        return "berthwatch"
    if name.startswith("berthwatch.detectors"):
        return "detectors"
    rest = name.removeprefix("berthwatch.pipeline").lstrip(".").split(".")[0]
    if rest in ("", "cli", "demo", "params"):
        return "entry"
    return rest


def test_every_part_is_known():
    parts = {_part(m) for m in MODULES}
    assert parts <= set(ALLOWED) | {"berthwatch"}, f"parts without a rule: {parts - set(ALLOWED)}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_follow_the_allowed_directions(name):
    part = _part(name)
    allowed = ALLOWED.get(part)
    if allowed is None:
        return
    wrong = sorted(m for m in _imports(name) if _part(m) not in allowed | {part})
    assert not wrong, f"{name} ({part}) imports {wrong}; {part} may import only {sorted(allowed) or 'itself'}"


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (depth-first search), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            # A package's __init__ that re-exports its submodules is not a cycle with them.
            if n in MODULES and _is_package(n) and m.startswith(n + "."):
                continue
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_no_import_cycles():
    cycle = _find_cycle({m: _imports(m) for m in MODULES})
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_search_finds_a_lazy_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _find_cycle(graph) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_checker_sees_a_forbidden_import(tmp_path, monkeypatch):
    """The rule is not vacuous: a stage importing another stage or the simulation is caught."""
    fake = tmp_path / "fake_stage.py"
    fake.write_text("from ..report import run_report\nfrom ..simulation.scenario import load_scenario\n")
    monkeypatch.setitem(MODULES, "berthwatch.pipeline.detect.fake_stage", fake)
    assert {"berthwatch.pipeline.report", "berthwatch.pipeline.simulation.scenario"} <= \
        _imports("berthwatch.pipeline.detect.fake_stage")
    with pytest.raises(AssertionError, match="may import only"):
        test_imports_follow_the_allowed_directions("berthwatch.pipeline.detect.fake_stage")


def test_modules_stay_small():
    """No module above ~500 lines unless it is one cohesive thing (listed here, with why)."""
    cohesive = {
        "berthwatch.detectors.optical": "the single-scene optical detector and its fitted classifier table",
        "berthwatch.detectors.stacks": "one detector: yard patches, edges, apron, TEU estimate",
    }
    big = {m: n for m, p in MODULES.items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > 520}
    assert set(big) <= set(cohesive), f"modules over 520 lines: {big}"
