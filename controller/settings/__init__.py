"""The machine config: `machine` (the whole file, `MachineConfig`), and the sections that the
core and the services read — `modes`, `mqtt`, `web`. Imports neither the core nor the services."""
