#include "crc16.h"

/* Bitwise, not table-driven: 512 bytes of table would cost a quarter of the AVR's RAM budget
 * (or flash reads), and at 115200 baud eight shifts per byte are far faster than the wire. */
uint16_t crc16_modbus(const uint8_t *data, size_t len)
{
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        for (uint8_t bit = 0; bit < 8; bit++) {
            crc = (crc & 1u) ? (uint16_t)((crc >> 1) ^ 0xA001u) : (uint16_t)(crc >> 1);
        }
    }
    return crc;
}
