"""Run every benchmark in bench/ (each `bench_*.py` with `run() -> str`) and write the results,
with the date and the machine, to bench/RESULTS.md.

    .venv/bin/python bench/run.py            # all
    .venv/bin/python bench/run.py loop erg   # only bench_loop.py and bench_erg.py
"""

from __future__ import annotations

import datetime
import importlib.util
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{platform.node()}: {os.cpu_count()} cores, {cpu}, Linux {platform.release()}, "
            f"Python {platform.python_version()}")


def main(names: list[str]) -> None:
    sys.path.insert(0, str(HERE.parent))
    modules = sorted(HERE.glob("bench_*.py"))
    if names:
        modules = [m for m in modules if m.stem.removeprefix("bench_") in names]
    sections = []
    for path in modules:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"bench: {path.stem} …", flush=True)
        t0 = time.perf_counter()
        try:
            section = module.run()
        except Exception as exc:  # a broken bench must not hide the others' results
            section = f"## {path.stem}\n\nFAILED: {exc!r}\n"
        sections.append(f"{section.rstrip()}\n\n_({path.stem} took {time.perf_counter() - t0:.0f} s)_\n")
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (f"# millctl benchmark results\n\nMeasured {now} on {machine()}.\n"
              "This machine is shared and noisy: compare figures within one run (medians, ratios), "
              "not across runs.\n\nRe-run: `.venv/bin/python bench/run.py` "
              "(or name some: `bench/run.py loop`).\n")
    out = HERE / ("RESULTS.md" if not names else f"RESULTS-{'-'.join(names)}.md")
    out.write_text(header + "\n" + "\n".join(sections))
    print(f"bench: wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
