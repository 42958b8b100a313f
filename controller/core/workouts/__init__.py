"""Workouts: the TOML model and loader (`model`) and the engine that runs a workout's
segments inside the loop (`engine`)."""
