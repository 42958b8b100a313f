/* Modbus RTU CRC-16 (polynomial 0xA001 reflected, initial value 0xFFFF). */
#ifndef MILL_CRC16_H
#define MILL_CRC16_H

#include <stddef.h>
#include <stdint.h>

/* CRC of `len` bytes; on the wire the low byte goes first. */
uint16_t crc16_modbus(const uint8_t *data, size_t len);

#endif
