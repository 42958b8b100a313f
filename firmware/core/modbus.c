#include "modbus.h"

#include "crc16.h"

/* Count limits from the Modbus application protocol (v1.1b3). */
#define MAX_READ_COUNT 125u
#define MAX_WRITE_COUNT 123u
#define MAX_RW_WRITE_COUNT 121u

void rtu_rx_init(rtu_rx_t *rx)
{
    rx->len = 0;
    rx->overflow = false;
    rx->ready = false;
}

void rtu_rx_byte(rtu_rx_t *rx, uint8_t byte)
{
    if (rx->ready || rx->len >= MB_FRAME_MAX) {
        rx->overflow = true; /* the master will time out and retry: never answer half a frame */
        return;
    }
    rx->buf[rx->len++] = byte;
}

void rtu_rx_silence(rtu_rx_t *rx)
{
    if (rx->ready) {
        if (rx->overflow) {
            /* Bytes came while a frame was pending; they belong to a frame we never saw whole.
             * The pending frame itself is intact. The next silence ends the dropped one. */
            rx->overflow = false;
        }
        return;
    }
    if (rx->overflow) {
        rx->len = 0;
        rx->overflow = false;
        return;
    }
    if (rx->len > 0) {
        rx->ready = true;
    }
}

void rtu_rx_release(rtu_rx_t *rx)
{
    rx->len = 0;
    rx->ready = false;
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint16_t finish(uint8_t *resp, uint16_t len)
{
    uint16_t crc = crc16_modbus(resp, len);
    resp[len] = (uint8_t)(crc & 0xFFu);
    resp[len + 1] = (uint8_t)(crc >> 8);
    return (uint16_t)(len + 2u);
}

static uint16_t exception(uint8_t *resp, uint8_t function, uint8_t code)
{
    resp[1] = (uint8_t)(function | 0x80u);
    resp[2] = code;
    return finish(resp, 3);
}

static uint16_t registers_reply(uint8_t *resp, const uint16_t *regs, uint16_t count)
{
    resp[2] = (uint8_t)(2u * count);
    for (uint16_t i = 0; i < count; i++) {
        resp[3 + 2 * i] = (uint8_t)(regs[i] >> 8);
        resp[4 + 2 * i] = (uint8_t)(regs[i] & 0xFFu);
    }
    return finish(resp, (uint16_t)(3u + 2u * count));
}

/* Reads go to a fixed array: counts beyond the map are refused before anything is copied. */
static uint8_t read_any(const board_t *b, uint8_t function, uint16_t address, uint16_t count, uint16_t *regs)
{
    if (count == 0 || count > MAX_READ_COUNT) {
        return MB_ILLEGAL_VALUE;
    }
    return function == FC_READ_INPUT ? board_read_input(b, address, count, regs)
                                     : board_read_holding(b, address, count, regs);
}

uint16_t modbus_handle(board_t *b, uint8_t device_id, const uint8_t *req, uint16_t len, uint8_t *resp)
{
    if (len < 4 || len > MB_FRAME_MAX) {
        return 0;
    }
    uint16_t crc = (uint16_t)(req[len - 2] | (req[len - 1] << 8));
    if (crc16_modbus(req, (uint16_t)(len - 2u)) != crc) {
        return 0; /* noise or a collision: the standard says stay silent */
    }
    uint8_t address = req[0];
    bool broadcast = address == MB_BROADCAST_ID;
    if (address != device_id && !broadcast) {
        return 0;
    }
    const uint8_t *pdu = req + 1;
    uint16_t pdu_len = (uint16_t)(len - 3u);
    uint8_t function = pdu[0];
    uint16_t regs[REG_INPUT_COUNT];
    uint8_t code;
    uint16_t out_len = 0;
    resp[0] = address;
    resp[1] = function;

    switch (function) {
    case FC_READ_HOLDING:
    case FC_READ_INPUT: {
        if (pdu_len != 5) {
            code = MB_ILLEGAL_VALUE;
            break;
        }
        uint16_t count = be16(pdu + 3);
        code = read_any(b, function, be16(pdu + 1), count, regs);
        out_len = code == MB_OK ? registers_reply(resp, regs, count) : 0;
        break;
    }
    case FC_WRITE_SINGLE:
        if (pdu_len != 5) {
            code = MB_ILLEGAL_VALUE;
            break;
        }
        code = board_write_holding(b, be16(pdu + 1), 1, pdu + 3);
        if (code == MB_OK) {
            for (uint8_t i = 2; i < 6; i++) {
                resp[i] = pdu[i - 1];
            }
            out_len = finish(resp, 6);
        }
        break;
    case FC_WRITE_MULTIPLE: {
        if (pdu_len < 6) {
            code = MB_ILLEGAL_VALUE;
            break;
        }
        uint16_t count = be16(pdu + 3);
        uint8_t bytes = pdu[5];
        if (count == 0 || count > MAX_WRITE_COUNT || bytes != 2u * count || pdu_len != 6u + bytes) {
            code = MB_ILLEGAL_VALUE;
            break;
        }
        code = board_write_holding(b, be16(pdu + 1), count, pdu + 6);
        if (code == MB_OK) {
            for (uint8_t i = 2; i < 6; i++) {
                resp[i] = pdu[i - 1];
            }
            out_len = finish(resp, 6);
        }
        break;
    }
    case FC_READ_WRITE_MULTIPLE: {
        if (pdu_len < 10) {
            code = MB_ILLEGAL_VALUE;
            break;
        }
        uint16_t read_at = be16(pdu + 1), read_count = be16(pdu + 3);
        uint16_t write_at = be16(pdu + 5), write_count = be16(pdu + 7);
        uint8_t bytes = pdu[9];
        if (write_count == 0 || write_count > MAX_RW_WRITE_COUNT || bytes != 2u * write_count
            || pdu_len != 10u + bytes) {
            code = MB_ILLEGAL_VALUE;
            break;
        }
        /* Check the read first, so a refused request changes nothing; the standard then has the
         * write happen before the read, so the answer shows what was just written. */
        code = read_any(b, FC_READ_HOLDING, read_at, read_count, regs);
        if (code == MB_OK) {
            code = board_write_holding(b, write_at, write_count, pdu + 10);
        }
        if (code == MB_OK) {
            code = read_any(b, FC_READ_HOLDING, read_at, read_count, regs);
            out_len = registers_reply(resp, regs, read_count);
        }
        break;
    }
    default:
        code = MB_ILLEGAL_FUNCTION;
        break;
    }
    if (broadcast) {
        return 0; /* a broadcast is never answered, whatever it did */
    }
    return code == MB_OK ? out_len : exception(resp, function, code);
}
