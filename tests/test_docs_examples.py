"""Examples in docs/ must run: every ```python block is executed, and every `$ millctl …` line
in a ```console block is run and must succeed. (```sh blocks are illustrations: long-running
servers, hardware paths.)"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from skeleton_helpers import MILLCTL, cli_env

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.S | re.M)


def examples() -> list[tuple[str, str, str]]:
    found = []
    for page in sorted(DOCS.glob("*.md")):
        for i, match in enumerate(FENCE.finditer(page.read_text())):
            lang, body = match.group(1), match.group(2)
            if lang == "python":
                found.append((f"{page.name}#{i}", "python", body))
            elif lang == "console":
                for line in body.splitlines():
                    if line.startswith("$ millctl "):
                        found.append((f"{page.name}#{i}", "console", line[2:]))
    return found


EXAMPLES = examples()


def test_the_docs_have_runnable_examples() -> None:
    assert any(kind == "python" for _, kind, _ in EXAMPLES)
    assert any(kind == "console" for _, kind, _ in EXAMPLES)


@pytest.mark.parametrize(("where", "kind", "code"), EXAMPLES, ids=[f"{w}:{c[:40]}" for w, _, c in EXAMPLES])
def test_doc_example_runs(where: str, kind: str, code: str, tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", code] if kind == "python" else [*MILLCTL, *shlex.split(code)[1:]]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=cli_env(tmp_path),
                          cwd=tmp_path)
    assert proc.returncode == 0, f"{where}: {code}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
