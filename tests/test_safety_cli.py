"""`millctl run --fault`, `millctl faults`, `millctl faults clear`, `millctl sim --fault`: real CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from skeleton_helpers import MILLCTL, cli_env, run_json

from controller.core.safety.faults import POLICIES
from simulator.faults import FaultSpec, Injection, parse_faults


def millctl(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MILLCTL, *args], capture_output=True, text=True, timeout=60, env=cli_env(data_dir))


def test_injected_faults_show_in_json_and_latch_until_a_technician_clears_them(tmp_path: Path) -> None:
    report = run_json(["run", "--mode", "level", "--target", "4", "--runner", "steady:3.0", "--duration", "7",
                       "--speedup", "0", "--no-web", "--fault", "estop@2.5s:1s", "--fault", "coil-fault@4.5s:1s"],
                      tmp_path)
    codes = [f["code"] for f in report["faults"]]
    assert codes == ["estop", "brake_coil"]
    for fault in report["faults"]:
        assert fault["response"] == POLICIES[fault["code"]].response
        assert {"t_s", "at", "cause", "state", "name"} <= set(fault)
        assert {"session_state", "speed_mps", "setpoint_ma", "coil_ma", "status"} <= set(fault["state"])
    assert report["faults"][0]["t_s"] == pytest.approx(2.5, abs=0.05)
    assert report["session"]["distance_m"] > 1.0  # what was measured before the faults is kept

    listed = json.loads(millctl(["faults", "--json"], tmp_path).stdout)
    assert [e["code"] for e in listed] == ["estop", "brake_coil"]
    table = millctl(["faults"], tmp_path)
    assert "brake_coil" in table.stdout and "brake stays disabled" in table.stdout

    # Latched coil fault: the next run keeps the brake disabled and says why.
    again = run_json(["run", "--mode", "level", "--target", "4", "--duration", "1", "--speedup", "0",
                      "--no-web"], tmp_path)
    assert again["faults"][0]["code"] == "brake_coil" and again["faults"][0]["from_log"]

    cleared = millctl(["faults", "clear", "--by", "tech-anna"], tmp_path)
    assert cleared.returncode == 0 and "cleared 2" in cleared.stdout
    assert json.loads(millctl(["faults", "--json"], tmp_path).stdout) == []
    history = json.loads(millctl(["faults", "--all", "--json"], tmp_path).stdout)
    assert history[-1]["event"] == "clear" and history[-1]["by"] == "tech-anna"
    after = run_json(["run", "--mode", "level", "--target", "4", "--duration", "1", "--speedup", "0",
                      "--no-web"], tmp_path)
    assert after["faults"] == []


@pytest.mark.parametrize(("args", "message"), [
    (["run", "--fault", "meltdown@3s", "--duration", "1"], "unknown kind 'meltdown'"),
    (["run", "--fault", "estop", "--duration", "1"], "expected KIND@START"),
    (["run", "--fault", "estop@1s", "--board", "tcp://127.0.0.1:1502", "--duration", "1"], "--board sim"),
    (["sim", "--tcp", "127.0.0.1:1502", "--fault", "link-drop@2s:0s"], "duration must be positive"),
])
def test_bad_fault_specs_are_refused_with_what_is_allowed(tmp_path: Path, args: list[str], message: str) -> None:
    proc = millctl(args, tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_fault_spec_parsing() -> None:
    assert parse_faults(["link-drop@20s:3s", "estop@30"]) == [
        FaultSpec(Injection.LINK_DROP, 20.0, 3.0), FaultSpec(Injection.ESTOP, 30.0, None)]
    assert parse_faults("reboot@5s,garble@1.5:2") == [
        FaultSpec(Injection.REBOOT, 5.0), FaultSpec(Injection.GARBLE, 1.5, 2.0)]
    with pytest.raises(ValueError, match="no duration"):
        FaultSpec.parse("reboot@5s:1s")
    spec = FaultSpec.parse("estop@2s:1s")
    assert not spec.active(1.99) and spec.active(2.0) and not spec.active(3.0)
