"""The reference machine's physics and the board emulator that serves it over the same
Modbus register map as the real brake-controller board. Imports drivers only."""
