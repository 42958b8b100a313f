"""The optional native build (controller/native.py): compiled with mypyc, the same runs give the
same figures to the last digit, the core says what it ran, and an edited source is caught.

The build runs in a copy of the tree in tmp_path, never in place: the suite itself runs on the
pure-Python modules (some safety tests replace the emulator's methods on an instance, which a
compiled class does not allow)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from controller import native

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("controller", "drivers", "simulator", "config")


def _copy_tree(dest: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, dest / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.so", "_native.json"))
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def _run(tree: Path, data: Path, *args: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-m", "controller.cli", "run", "--board", "sim", "--speedup", "0",
                          "--no-web", "--json", "--data-dir", str(data), *args],
                         cwd=tree, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    report: dict[str, object] = json.loads(out.stdout)
    return report


@pytest.fixture(scope="module")
def native_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = _copy_tree(tmp_path_factory.mktemp("native"))
    built = subprocess.run([sys.executable, "-m", "controller.native", "build"], cwd=tree,
                           env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True,
                           timeout=600)
    assert built.returncode == 0, built.stderr[-4000:]
    return tree


def test_every_listed_module_is_compiled_and_imported_from_its_extension(native_tree: Path) -> None:
    state = native.status(native_tree)
    assert state.compiled == native.NATIVE_MODULES and state.stale == ()
    probe = ("import importlib, sys; from controller.native import NATIVE_MODULES; "
             "print(sum(importlib.import_module(m).__file__.endswith('.so') for m in NATIVE_MODULES))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=native_tree, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(native_tree)}, check=True)
    assert int(out.stdout) == len(native.NATIVE_MODULES)
    assert not (native_tree / "build").exists()  # the build leaves nothing but the modules


PICKLE_PROBE = """
import pickle
from controller.core.estimator import GapBridge, Motion
from drivers.registers import DEFAULT_MAP, Status
from drivers.sample import BoardCommand, BoardSample, BoardSettings
values = [BoardSample(1, 2, 3, Status.BRAKE_ENABLED, 24.5, 12000, None, -5, 0, 257, 1.25),
          BoardCommand(1500, True, True, False), BoardSettings(), DEFAULT_MAP,
          Motion(1.5, 0.2, 0.015, 0.01, 7.0, bridge=GapBridge(0.3, 0.0, 0.2, 1.4, 1.5)),
          DEFAULT_MAP.field("control")]
for value in values:
    again = pickle.loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    assert again == value and type(again) is type(value), (value, again)
print(len(values))
"""


def test_compiled_frozen_dataclasses_cross_a_pickle_unchanged(native_tree: Path) -> None:
    out = subprocess.run([sys.executable, "-c", PICKLE_PROBE], cwd=native_tree, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(native_tree)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["6"]


@pytest.mark.parametrize("args", [
    ("--duration", "60", "--runner", "steady:3.0"),
    ("--duration", "30", "--runner", "tiring:3.5", "--mode", "erg", "--target", "150"),
])
def test_native_and_pure_python_runs_agree_to_the_last_digit(native_tree: Path, tmp_path: Path,
                                                             args: tuple[str, ...]) -> None:
    pure = _copy_tree(tmp_path / "pure")
    compiled = _run(native_tree, tmp_path / "a", *args)
    plain = _run(pure, tmp_path / "b", *args)
    core = compiled["core"]
    assert isinstance(core, dict)
    assert core["native"] == {"compiled": list(native.NATIVE_MODULES), "stale": []}
    assert plain["core"]["native"] == {"compiled": [], "stale": []}  # type: ignore[index]
    assert compiled["truth"] == plain["truth"]
    compiled_session, plain_session = dict(compiled["session"]), dict(plain["session"])  # type: ignore[call-overload]
    for wall_clock_field in ("id", "started_at"):  # when it ran, not what it measured
        compiled_session.pop(wall_clock_field), plain_session.pop(wall_clock_field)
    assert compiled_session == plain_session
    assert compiled["loop"]["cycles"] == plain["loop"]["cycles"]  # type: ignore[index]
    assert core["snapshots_received"] > 0  # compiled snapshots crossed the channel


def test_an_edited_source_makes_its_compiled_module_stale_and_clean_removes_the_build(native_tree: Path,
                                                                                        tmp_path: Path) -> None:
    tree = tmp_path / "edited"
    shutil.copytree(native_tree, tree)
    guard = native.source_path("controller.core.guard", tree)
    guard.write_text(guard.read_text() + "\n# edited after the build\n")
    assert native.status(tree).stale == ("controller.core.guard",)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-m", "controller.cli", "run", "--board", "sim", "--speedup", "0",
                          "--duration", "1", "--no-web", "--json", "--data-dir", str(tmp_path / "data")],
                         cwd=tree, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout)["core"]["native"]["stale"] == ["controller.core.guard"]
    assert "compiled modules older than their source (controller.core.guard)" in out.stderr
    removed = native.clean(tree)
    assert native.status(tree) == native.NativeStatus((), ())
    assert not list(tree.rglob("*.so")) and not (tree / "controller" / "_native.json").exists()
    assert len(removed) == len(native.NATIVE_MODULES) + 2  # the modules, the shared library, the manifest


def test_a_build_that_fails_leaves_the_pure_python_modules(tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path / "broken")
    guard = native.source_path("controller.core.guard", tree)
    guard.write_text(guard.read_text() + "\ndef broken() -> int:\n    return 'not an int'\n")
    with pytest.raises(native.NativeBuildError, match=r"Incompatible return value type"):
        native.build(tree, modules=("controller.core.guard",))  # one small module: a fast failure
    assert native.status(tree).compiled == () and not list(tree.rglob("*.so"))
