"""millctl's controller, as two processes and the tools around them.

- `core/`: what runs in the real-time process that owns the board — the control loop, the
  motion estimator, the safety supervisor and the setpoint guard, the training modes, the
  workout engine and the session totals; `core/process.py` is that process's entry point, and
  `core/channel.py` the messages it exchanges with the parent. It imports nothing from
  `services/`.
- `services/`: what runs in the parent process and only watches or asks the core — the
  operator console (web), MQTT telemetry, the session history and its exports, Bluetooth
  FTMS, the terminal live view. They see the core only as a `CoreView` (`services/core_view.py`),
  implemented across the process boundary or, for tests, in the same process (`services/core_link/`).
- `calibration/`: the technician's procedures; they drive a control loop like any client.
- `settings/`: the machine config (TOML, validated by pydantic), shared by both sides.
- `cli/`: the `millctl` command line: parse, call, print.
- `runtime.py`: assembles a run — board, core and services; `run_core` is what the core process
  runs, `run_controller` starts the core (in its own process, or here) and the services.
"""
