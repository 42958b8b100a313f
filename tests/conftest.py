"""Suite-wide pytest hooks: the longest tests first on the parallel workers.

pytest-xdist hands tests to its workers in collection order, a few at a time, as each worker
frees up. A 60 s test collected last starts when the others are nearly done and the whole pass
waits for it alone; started first, it runs while the short tests fill the other workers
(longest-processing-time-first scheduling). So on an xdist worker the collected tests are
sorted by how long each took when last measured, slowest first, from tests/durations.json.
A test not in the file counts as quick and keeps its place among the quick ones.

`pytest --record-durations …` measures a run and merges what it saw into tests/durations.json
(setup, call and teardown of each test, in seconds). Refresh it after adding a slow test. The
same run prints the tests that used the most CPU (the test's process and every child process
it waited for: `millctl` runs, hubs, brokers): on 2 cores the parallel pass is bound by CPU,
not by its longest test, so that table says where the time goes.
"""

from __future__ import annotations

import json
import re
import resource
from collections.abc import Generator
from pathlib import Path

import pytest

DURATIONS = Path(__file__).with_name("durations.json")
# Below this a test's place in the queue does not matter: the file keeps only the slower ones.
RECORDED_FROM_S = 1.0
CPU_SHOWN = 30  # rows of the CPU table
CPU_AT_START = pytest.StashKey[float]()
# pytest-xdist's loadgroup appends "@GROUP" to the id of a test marked xdist_group.
GROUP_SUFFIX = re.compile(r"@[^\[\]:@]+$")


def plain_id(nodeid: str) -> str:
    """The test's id without xdist's group suffix: the same in both passes."""
    return GROUP_SUFFIX.sub("", nodeid)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--record-durations", action="store_true", default=False,
                     help=f"merge this run's test durations into {DURATIONS.name} (tests slower than "
                          f"{RECORDED_FROM_S:g} s), which orders the slowest tests first on xdist workers")


def recorded_durations_s() -> dict[str, float]:
    """Seconds per test node id, as last recorded (empty when the file is missing)."""
    if not DURATIONS.exists():
        return {}
    data: dict[str, float] = json.loads(DURATIONS.read_text())
    return data


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Only on xdist workers: they must all collect the same order (the sort is deterministic),
    # and a serial run (the realtime pass, one file) gains nothing from it.
    if not hasattr(config, "workerinput"):
        return
    durations = recorded_durations_s()
    items.sort(key=lambda item: -durations.get(plain_id(item.nodeid), 0.0))  # stable: quick tests keep their order


def cpu_used_s() -> float:
    """CPU seconds (user and system) of this process and of every child it has waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CpuMeter:
    """On the process that runs the tests: the CPU one test used, from its setup to the end of its
    teardown, carried to the controller in the teardown report's user_properties."""

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        item.stash[CPU_AT_START] = cpu_used_s()
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item,
                                  call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if call.when == "teardown" and CPU_AT_START in item.stash:
            report.user_properties.append(("cpu_s", cpu_used_s() - item.stash[CPU_AT_START]))
        return report


class DurationRecorder:
    """Adds up setup, call and teardown of each test (on the xdist controller, reports from
    every worker arrive here) and merges them into tests/durations.json at the end."""

    def __init__(self) -> None:
        self.seen_s: dict[str, float] = {}
        self.cpu_s: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        nodeid = plain_id(report.nodeid)
        self.seen_s[nodeid] = self.seen_s.get(nodeid, 0.0) + report.duration
        for name, value in report.user_properties:
            if name == "cpu_s":
                self.cpu_s[nodeid] = float(value)  # type: ignore[arg-type]

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.cpu_s:
            return
        total = sum(self.cpu_s.values())
        terminalreporter.section(f"CPU per test: {total:.0f} s in all, the {CPU_SHOWN} highest")
        for nodeid, cpu_s in sorted(self.cpu_s.items(), key=lambda kv: -kv[1])[:CPU_SHOWN]:
            terminalreporter.write_line(f"{cpu_s:7.1f} s CPU {self.seen_s.get(nodeid, 0.0):7.1f} s wall  {nodeid}")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(session.config, "workerinput"):
            return  # the controller writes the file once, from every worker's reports
        merged = {**recorded_durations_s(), **{nodeid: round(s, 1) for nodeid, s in self.seen_s.items()}}
        # Tests of removed files go; a renamed test's old entry stays, harmless (it matches nothing).
        # A test this run did not see is kept: it may belong to the other pass, or a -k left it out.
        root = session.config.rootpath
        slow = {nodeid: s for nodeid, s in sorted(merged.items())
                if s >= RECORDED_FROM_S and (root / nodeid.split("::", 1)[0]).exists()}
        DURATIONS.write_text(json.dumps(slow, indent=1) + "\n")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("record_durations"):
        config.pluginmanager.register(DurationRecorder(), "millctl-duration-recorder")
        config.pluginmanager.register(CpuMeter(), "millctl-cpu-meter")
