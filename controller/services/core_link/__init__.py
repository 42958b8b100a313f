"""The two implementations of `CoreView` (controller/services/core_view.py): `child` runs the
core in its own real-time process and talks to it over the channel; `in_process` wraps a
`ControlLoop` running in this process (tests on virtual time)."""
