"""Loop health: achieved rate, wake-up lateness percentiles, missed deadlines, CPU share.

Lateness goes into a fixed histogram (10 µs bins up to 100 ms), so a session of any length
costs the same memory. A percentile walks the counts of 1 ms groups of bins, then the bins of
one group: at most 200 steps, where a walk of the bins to a late percentile was up to 10 000
(about 0.5 ms; the MQTT sampler asks for two with each in-process status). The bins are an array of
machine integers, not a list: the garbage collector does not walk an array, and 40 machines'
lists of 10 000 bins in one process (`sim-fleet`) were 400 000 references to visit in each
collection of the generation that held them (about 2 ms).
"""

from __future__ import annotations

import time
from array import array
from dataclasses import dataclass

BIN_S = 10e-6
BINS = 10_000  # 100 ms; later wake-ups land in the last bin (the max is kept exactly)
#: Bins per group: a percentile finds its group first (100 groups of 1 ms), then its bin.
GROUP = 100


@dataclass(frozen=True)
class LoopReport:
    target_hz: float
    rate_hz: float
    cycles: int
    missed: int
    lateness_p50_ms: float
    lateness_p99_ms: float
    lateness_max_ms: float
    cpu_percent: float
    cpu_ms_per_cycle: float
    transactions_per_cycle: float

    def as_json(self) -> dict[str, object]:
        return {
            "target_hz": self.target_hz,
            "rate_hz": round(self.rate_hz, 3),
            "cycles": self.cycles,
            "lateness_ms": {"p50": round(self.lateness_p50_ms, 4),
                            "p99": round(self.lateness_p99_ms, 4),
                            "max": round(self.lateness_max_ms, 4)},
            "missed": self.missed,
            "cpu_percent": round(self.cpu_percent, 2),
            "cpu_ms_per_cycle": round(self.cpu_ms_per_cycle, 4),
            "transactions_per_cycle": round(self.transactions_per_cycle, 3),
        }


class LoopStats:
    """Accumulates per-cycle timing. `start` at the first deadline, `record` every cycle."""

    def __init__(self, target_hz: float) -> None:
        self.target_hz = target_hz
        self._bins = _empty_bins()
        self._groups = _empty_groups()
        self.cycles = 0
        self.missed = 0
        self.max_lateness_s = 0.0
        self._start_s = 0.0
        self._last_s = 0.0
        self._cpu_start_s = 0.0
        self._wall_start_s = 0.0
        self.transactions = 0

    def start(self, now_s: float) -> None:
        self._start_s = self._last_s = now_s
        self._cpu_start_s = time.process_time()
        self._wall_start_s = time.perf_counter()

    def restart(self, now_s: float) -> None:
        """Forget everything recorded so far (e.g. after a warm-up) and count from `now_s`."""
        self._bins = _empty_bins()
        self._groups = _empty_groups()
        self.cycles = self.missed = 0
        self.max_lateness_s = 0.0
        self.start(now_s)

    def record(self, lateness_s: float, now_s: float) -> None:
        self.cycles += 1
        self._last_s = now_s
        lateness_s = max(0.0, lateness_s)
        self.max_lateness_s = max(self.max_lateness_s, lateness_s)
        i = min(BINS - 1, int(lateness_s / BIN_S))
        self._bins[i] += 1
        self._groups[i // GROUP] += 1

    def percentile_s(self, q: float) -> float:
        if not self.cycles:
            return 0.0
        rank = q * self.cycles
        seen = 0
        for g, count in enumerate(self._groups):
            if seen + count < rank:
                seen += count
                continue
            bins = self._bins
            for i in range(g * GROUP, (g + 1) * GROUP):
                seen += bins[i]
                if seen >= rank:
                    return min((i + 0.5) * BIN_S, self.max_lateness_s)
        return self.max_lateness_s

    def report(self) -> LoopReport:
        elapsed = self._last_s - self._start_s
        wall = time.perf_counter() - self._wall_start_s
        cpu = time.process_time() - self._cpu_start_s
        cycles = max(1, self.cycles)
        return LoopReport(
            target_hz=self.target_hz,
            rate_hz=self.cycles / elapsed if elapsed > 0 else 0.0,
            cycles=self.cycles,
            missed=self.missed,
            lateness_p50_ms=self.percentile_s(0.50) * 1e3,
            lateness_p99_ms=self.percentile_s(0.99) * 1e3,
            lateness_max_ms=self.max_lateness_s * 1e3,
            cpu_percent=100.0 * cpu / wall if wall > 0 else 0.0,
            cpu_ms_per_cycle=1e3 * cpu / cycles,
            transactions_per_cycle=self.transactions / cycles,
        )


def _empty_bins() -> array[int]:
    return array("q", bytes(8 * BINS))


def _empty_groups() -> array[int]:
    return array("q", bytes(8 * (BINS // GROUP)))
