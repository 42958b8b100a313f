"""Helpers for the walking-skeleton tests: free ports, the CLI as a subprocess, servers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MILLCTL = [sys.executable, "-m", "controller.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


def wait_for_path(path: Path, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{path} did not appear")


def cli_env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "MILLCTL_DATA_DIR": str(data_dir)}


def run_json(args: list[str], data_dir: Path, timeout_s: float = 120.0) -> dict[str, Any]:
    """Run `millctl ARGS --json` and return its report."""
    proc = subprocess.run([*MILLCTL, *args, "--json"], capture_output=True, text=True,
                          timeout=timeout_s, env=cli_env(data_dir))
    assert proc.returncode == 0, f"millctl {' '.join(args)} failed:\n{proc.stderr}"
    return json.loads(proc.stdout)


def start_sim(args: list[str], data_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([*MILLCTL, "sim", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=cli_env(data_dir))


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
