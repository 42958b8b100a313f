"""The optional native build: the hot modules compiled with mypyc, the same source as Python.

`scripts/build_native.sh` (`python -m controller.native build`) compiles `NATIVE_MODULES` in
place: each gets an extension module beside its `.py`, which Python imports instead of the
source, all sharing one library (`controller/_native__mypyc…so`). `clean` removes them and the
pure-Python modules are used again. Nothing else changes: the modules are ordinary typed
Python, and the compiled ones perform the same floating-point operations in the same order, so
the simulator's truth and the controller's figures are bit for bit those of the pure-Python run
(tests/test_native_build.py runs both and compares).

A compiled module does not follow later edits of its source: the build writes the source's
SHA-256 beside it (`controller/_native.json`), and `status()` names the compiled modules whose
source changed since, which the core reports and warns about (`millctl run --json`: `core.native`).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The modules compiled, chosen by profile (docs/performance.md): the simulator's 1 kHz step,
#: the register codec and the core's per-cycle pieces. Not the sim board (mypyc cannot compile a
#: subclass of the interpreted `Board` ABC), the stride detector (being reworked) nor the modes.
#: Frozen dataclasses that cross the core's channel pickle as their fields (drivers/pickling.py):
#: compiled, they refuse the default unpickling.
NATIVE_MODULES: tuple[str, ...] = (
    "simulator.athlete",
    "simulator.emulator",
    "simulator.machine",
    "drivers.pickling",
    "drivers.registers",
    "drivers.sample",
    "controller.core.loop",
    "controller.core.estimator",
    "controller.core.guard",
    "controller.core.loop_stats",
    "controller.core.records",
    "controller.core.session_totals",
    "controller.core.safety.coil",
    "controller.core.safety.faults",
    "controller.core.safety.link",
    "controller.core.safety.plausibility",
    "controller.core.safety.supervisor",
)
#: The shared library's module (mypyc's group): inside a package, so an editable install finds it.
GROUP = "controller._native"
MANIFEST = ROOT / "controller" / "_native.json"


class NativeBuildError(Exception):
    """mypyc or the C compiler failed; the pure-Python modules are still in place."""


@dataclass(frozen=True)
class NativeStatus:
    """Which of `NATIVE_MODULES` are compiled here, and which of those no longer match their source."""

    compiled: tuple[str, ...]
    stale: tuple[str, ...]

    def as_json(self) -> dict[str, list[str]]:
        return {"compiled": list(self.compiled), "stale": list(self.stale)}


def source_path(module: str, root: Path = ROOT) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


def extension_paths(module: str, root: Path = ROOT) -> list[Path]:
    """The compiled files of `module` present under `root` (any ABI suffix)."""
    source = source_path(module, root)
    return [source.with_name(source.stem + suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES
            if source.with_name(source.stem + suffix).exists()]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def status(root: Path = ROOT) -> NativeStatus:
    """Compiled modules and stale ones (source edited since the build, or no record of it)."""
    compiled = tuple(m for m in NATIVE_MODULES if extension_paths(m, root))
    manifest = root / MANIFEST.relative_to(ROOT)
    try:
        built: dict[str, str] = json.loads(manifest.read_text()) if compiled else {}
    except (OSError, ValueError):
        built = {}
    stale = tuple(m for m in compiled if built.get(m) != _digest(source_path(m, root)))
    return NativeStatus(compiled, stale)


def clean(root: Path = ROOT) -> list[Path]:
    """Remove every compiled module, the shared library and the manifest; return what went."""
    group = source_path(GROUP, root)
    removed = [p for m in (*NATIVE_MODULES, GROUP) for p in extension_paths(m, root)]
    removed += [p for p in group.parent.glob(group.stem + "__mypyc*") if p not in removed]
    manifest = root / MANIFEST.relative_to(ROOT)
    if manifest.exists():
        removed.append(manifest)
    for path in removed:
        path.unlink()
    return removed


def build(root: Path = ROOT, modules: tuple[str, ...] = NATIVE_MODULES) -> NativeStatus:
    """Compile `modules` (all of `NATIVE_MODULES` unless a test asks for fewer) under `root` in place
    (about 35 s of CPU for all), replacing any older build. Needs mypy (the dev extras) and a C
    compiler; raises `NativeBuildError` if either fails, and leaves no compiled module behind."""
    import subprocess  # only the build needs these: the core imports this module for `status`
    import tempfile

    clean(root)
    with tempfile.TemporaryDirectory(prefix="millctl-native-") as tmp:
        script = Path(tmp) / "setup.py"
        paths = [str(source_path(m, root).relative_to(root)) for m in modules]
        script.write_text(
            "from setuptools import setup\n"
            "from mypyc.build import mypycify\n"
            f"setup(name='millctl-native', ext_modules=mypycify({paths!r}, group_name={GROUP!r}, "
            f"target_dir={str(Path(tmp) / 'c')!r}))\n")
        result = subprocess.run(
            [sys.executable, str(script), "build_ext", "--inplace", "--build-temp", str(Path(tmp) / "o"),
             "--build-lib", str(Path(tmp) / "lib")],
            cwd=root, capture_output=True, text=True)
        if result.returncode != 0:
            clean(root)
            raise NativeBuildError(f"native build failed (exit {result.returncode}):\n"
                                   f"{(result.stdout + result.stderr)[-4000:]}")
    manifest = root / MANIFEST.relative_to(ROOT)
    manifest.write_text(json.dumps({m: _digest(source_path(m, root)) for m in modules}, indent=1) + "\n")
    return status(root)


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    if command == "build":
        try:
            result = build()
        except NativeBuildError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"compiled {len(result.compiled)} modules: {', '.join(result.compiled)}")
        return 0
    if command == "clean":
        removed = clean()
        print(f"removed {len(removed)} files; the pure-Python modules are used")
        return 0
    if command == "status":
        print(json.dumps(status().as_json(), indent=1))
        return 0
    print("usage: python -m controller.native [build|clean|status]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
