"""Bluetooth Fitness Machine Service (FTMS 1.0): let fitness apps see and drive the machine.

- `codec` / `control_codec`: pure byte encoders and decoders (no Bluetooth needed);
- `snapshot_data`: the controller's `Snapshot` as Treadmill Data values;
- `control`: control point requests mapped onto the core's `execute` (`CoreView`), and status
  notifications derived from the core's events;
- `peripheral`: the FTMS server logic over an abstract GATT transport;
- `ble`: the optional `bless` transport and the `ftms_service` run beside the core.
"""
