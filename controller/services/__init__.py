"""Services around the core, run in the parent process: they read snapshots and events and
send validated commands, never touching the board. `console` (web), `telemetry` (MQTT),
`history` (session store and exports), `ftms` (Bluetooth), `live_view` (terminal),
`athletes` (the hub's roster and leaderboards for the console, PINs, live personal bests)."""
