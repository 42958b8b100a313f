"""`millctl ftms`: the Bluetooth Fitness Machine Service without Bluetooth.

`millctl ftms sample` runs the controller and prints, once a second of machine time, the
Treadmill Data packet an app would receive (hex) with the values it encodes, so any FTMS
decoder can be checked against it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Annotated

import typer

from controller.cli.common import BoardOption, ConfigOption, DataDirOption, resolve_config
from controller.runtime import RunOptions, run_controller
from controller.services.core_view import CoreView
from controller.services.ftms.codec import TreadmillData, decode_treadmill_data, encode_treadmill_data
from controller.services.ftms.rsc import decode_rsc_measurement, encode_rsc_measurement, rsc_measurement
from controller.services.ftms.snapshot_data import treadmill_data

app = typer.Typer(no_args_is_help=True, help="Bluetooth FTMS (fitness apps): inspect what apps receive.")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="ftms")


def describe(values: TreadmillData) -> str:
    """The values of a Treadmill Data record, for people."""
    parts = [f"speed {values.instantaneous_speed_kmh:.2f} km/h" if values.instantaneous_speed_kmh is not None
             else "speed -"]
    if values.average_speed_kmh is not None:
        parts.append(f"avg {values.average_speed_kmh:.2f} km/h")
    if values.total_distance_m is not None:
        parts.append(f"distance {values.total_distance_m} m")
    if values.total_energy_kcal is not None:
        parts.append(f"energy {values.total_energy_kcal} kcal ({values.energy_per_hour_kcal} kcal/h, "
                     f"{values.energy_per_minute_kcal} kcal/min)")
    parts.append(f"HR {values.heart_rate_bpm} bpm" if values.heart_rate_bpm is not None else "HR -")
    if values.metabolic_equivalent is not None:
        parts.append(f"MET {values.metabolic_equivalent:.1f}")
    if values.elapsed_time_s is not None:
        parts.append(f"elapsed {values.elapsed_time_s} s")
    if values.force_on_belt_n is not None:
        parts.append(f"force {values.force_on_belt_n} N, power {values.power_output_w} W")
    return " | ".join(parts)


@app.command("sample")
def sample(
    board: BoardOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    seconds: Annotated[int, typer.Option(help="How many packets (one per second of machine time).", min=1)] = 10,
    mode: Annotated[str, typer.Option(help="free | level | erg | speed-cap | sled | parachute")] = "free",
    target: Annotated[float | None, typer.Option(help="Mode target (see `millctl run --help`).")] = None,
    runner: Annotated[str | None, typer.Option(help="sim board: athlete profile, e.g. steady:3.0")] = None,
    speedup: Annotated[float, typer.Option(
        help="sim board: virtual time N× faster than real (0 = as fast as possible).", min=0)] = 1.0,
    seed: Annotated[int, typer.Option(help="sim board: random seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line: t_s, hex, flags, values.")] = False,
    rsc: Annotated[bool, typer.Option(
        "--rsc", help="Print the Running Speed and Cadence measurement (0x2A53) instead (docs/ftms.md).")] = False,
) -> None:
    """Print the Treadmill Data packet (hex) and its values once a second (or, with --rsc, the
    RSC Measurement packet)."""
    machine, directory = resolve_config(config, data_dir)
    options = RunOptions(board_url=board, mode=mode, target=target, runner=runner, speedup=speedup, seed=seed,
                         data_dir=directory, duration_s=seconds + 0.5)
    body_mass_kg = machine.athlete.body_mass_kg

    async def sampler(core: CoreView) -> None:
        # In process: one packet per second of the machine's (possibly virtual) time.
        start = core.clock.now_s()
        for k in range(1, seconds + 1):
            await core.clock.sleep_until(start + k)
            snapshot = core.latest
            if snapshot is None:
                continue
            if rsc:
                rsc_packet = encode_rsc_measurement(rsc_measurement(snapshot))
                decoded = decode_rsc_measurement(rsc_packet)
                if as_json:
                    print(json.dumps({"t_s": k, "hex": rsc_packet.hex(), "flags": f"0x{rsc_packet[0]:02x}",
                                      "values": asdict(decoded)}), flush=True)
                else:
                    print(f"t={k}s  {rsc_packet.hex()}  {decoded.speed_mps:.2f} m/s | cadence "
                          f"{decoded.cadence_spm}/min | stride {decoded.stride_length_m} m | total "
                          f"{decoded.total_distance_m} m | {'running' if decoded.running else 'walking'}", flush=True)
                continue
            packet = encode_treadmill_data(treadmill_data(snapshot, body_mass_kg))
            values = decode_treadmill_data(packet)  # what the bytes say, at the wire's resolution
            if as_json:
                print(json.dumps({"t_s": k, "hex": packet.hex(), "flags": f"0x{packet[0] | packet[1] << 8:04x}",
                                  "values": asdict(values)}), flush=True)
            else:
                print(f"t={k}s  {packet.hex()}  {describe(values)}", flush=True)

    asyncio.run(run_controller(machine, options, [sampler], handle_signals=True))
