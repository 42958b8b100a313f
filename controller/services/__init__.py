"""Services around the core, run in the parent process: they read snapshots, statuses and events
and send validated commands through a `CoreView` (`core_view.py`; implementations in `core_link/`),
never touching the board or the loop. `console` (web), `telemetry` (MQTT), `history` (session
store and exports), `ftms` (Bluetooth), `live_view` (terminal)."""
