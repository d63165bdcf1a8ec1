"""Manifest, incremental skip, atomic writes and the lock, exercised with a trivial stage."""

import multiprocessing
import os
import time

import pytest

from berthwatch.pipeline.core.atomic import atomic_path, write_text_atomic
from berthwatch.pipeline.core.errors import UserError
from berthwatch.pipeline.core.manifest import DirLock, Manifest, Task, run_tasks


def upper_stage(root, inputs, params, calls):
    """A stage that upper-cases each input file into out/<name>."""
    def make(inp):
        out = root / "out" / inp.name

        def run(task):
            calls.append(task.key)
            text = inp.read_text()
            if "FAIL" in text:
                raise ValueError("bad input")
            write_text_atomic(out, text.upper() + params["suffix"])

        return Task(inp.name, [out], [inp], dict(params), run)

    return [make(i) for i in inputs]


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for n in "abc":
        (src / n).write_text(n * 3)
    return tmp_path, sorted(src.iterdir())


def run(root, inputs, params=None, calls=None):
    calls = [] if calls is None else calls
    m = Manifest(root, "upper")
    res = run_tasks(m, upper_stage(root, inputs, params or {"suffix": "!"}, calls))
    return res, calls


def test_rerun_skips_what_is_up_to_date_and_recomputes_exactly_what_changed(tree):
    root, inputs = tree
    res, calls = run(root, inputs)
    assert sorted(res.done) == ["a", "b", "c"] and (root / "out" / "a").read_text() == "AAA!"
    res, calls = run(root, inputs)
    assert calls == [] and sorted(res.skipped) == ["a", "b", "c"]
    time.sleep(0.01)
    inputs[1].write_text("bbbb")
    res, calls = run(root, inputs)
    assert calls == ["b"] and (root / "out" / "b").read_text() == "BBBB!"
    res, calls = run(root, inputs, params={"suffix": "?"})
    assert sorted(calls) == ["a", "b", "c"]


def test_touch_without_content_change_does_not_recompute(tree):
    root, inputs = tree
    run(root, inputs)
    os.utime(inputs[0], None)
    _, calls = run(root, inputs)
    assert calls == []


def test_tampered_or_missing_output_is_rebuilt(tree):
    root, inputs = tree
    run(root, inputs)
    (root / "out" / "a").write_text("garbage")
    (root / "out" / "c").unlink()
    _, calls = run(root, inputs)
    assert sorted(calls) == ["a", "c"] and (root / "out" / "a").read_text() == "AAA!"


def test_outputs_whose_inputs_are_gone_are_removed(tree):
    root, inputs = tree
    run(root, inputs)
    inputs[2].unlink()
    m = Manifest(root, "upper")
    removed = m.prune_orphans()
    m.save()
    assert removed == ["out/c"] and not (root / "out" / "c").exists()
    assert "out/c" not in Manifest(root, "upper").entries


def test_failing_task_keeps_others_and_leaves_no_partial_output(tree):
    root, inputs = tree
    inputs[1].write_text("FAIL")
    res, _ = run(root, inputs)
    assert set(res.done) == {"a", "c"} and "b" in res.failed and "bad input" in res.failed["b"]
    assert not (root / "out" / "b").exists()
    assert not [p for p in (root / "out").iterdir() if p.name.startswith(".")]


def test_atomic_path_keeps_old_file_when_writer_fails(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def _hold_lock(directory, ready, release):
    with DirLock(directory):
        ready.set()
        release.wait(10)


def test_lock_refuses_a_second_run_and_is_released_after(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(tmp_path, ready, release))
    proc.start()
    try:
        assert ready.wait(20)
        with pytest.raises(UserError, match=f"pid {proc.pid}"):
            with DirLock(tmp_path):
                pass
    finally:
        release.set()
        proc.join(20)
    with DirLock(tmp_path):  # free again once the holder has exited
        pass


def test_damaged_manifest_is_rebuilt(tmp_path, caplog):
    p = tmp_path / ".berthwatch" / "manifest-upper.json"
    p.parent.mkdir()
    for damaged in ("{", "[]", '{"outputs": [1, 2]}', '{"outputs": {"a": "b"}}', ""):
        p.write_text(damaged)
        caplog.clear()
        assert Manifest(tmp_path, "upper").entries == {}
        assert "damaged manifest" in caplog.text


def test_a_forced_rerun_keeps_the_recorded_sums_of_unchanged_inputs_and_hashes_changed_ones(tree, monkeypatch):
    from berthwatch.pipeline.core import manifest as mf

    root, inputs = tree
    run(root, inputs)
    hashed = []
    real = mf.sha256_file
    monkeypatch.setattr(mf, "sha256_file", lambda path, *a: hashed.append(path) or real(path, *a))
    m = Manifest(root, "upper")
    run_tasks(m, upper_stage(root, inputs, {"suffix": "!"}, []), force=True)
    assert hashed and not set(hashed) & set(inputs)  # the outputs are new; the inputs are not read again
    inputs[0].write_text("changed")  # new size and time: its sum is computed again, and right
    hashed.clear()
    run_tasks(m, upper_stage(root, inputs, {"suffix": "!"}, []), force=True)
    assert [p for p in hashed if p in inputs] == [inputs[0]]
    assert m.entries[m.rel(root / "out" / "a")]["inputs"][m.rel(inputs[0])]["sha256"] == real(inputs[0])


def test_paths_are_keyed_by_where_they_really_are_through_symlinks_and_dots(tmp_path, monkeypatch):
    """The manifest's keys resolve every folder on the way (cached per folder): a tile reached through a
    symlinked folder, a ``..`` or a relative path gets the key of its real place, as ``realpath`` gives."""
    out, data = tmp_path / "out", tmp_path / "data" / "tiles" / "rajin"
    (data / "s2").mkdir(parents=True)
    out.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "data", out / "data-link")
    os.symlink(tmp_path / "elsewhere", data / "s1")
    monkeypatch.chdir(tmp_path)
    manifest = Manifest(out, "test")
    paths = [out / "detections" / "a.geojson", out / "data-link" / "tiles" / "rajin" / "s2" / "x.tif",
             out / "data-link" / "tiles" / "rajin" / "s2" / ".." / "s1" / "y.tif", data / "s1" / "z.tif",
             out / "." / "w", tmp_path / "out2" / "v", "out/u", out]
    for path in paths:
        real = os.path.realpath(path)
        expected = os.path.relpath(real, os.path.realpath(out)) if real.startswith(os.path.realpath(out) + os.sep) \
            or real == os.path.realpath(out) else real
        assert manifest.rel(path) == expected, path
    assert manifest.rel(paths[1]) == os.path.realpath(data / "s2" / "x.tif")
    assert manifest.rel(paths[3]) == os.path.realpath(tmp_path / "elsewhere" / "z.tif")
