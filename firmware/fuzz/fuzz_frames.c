/* libFuzzer target: a byte stream split into frames, fed through the RTU receiver and the
 * request handler, with milliseconds ticking in between. Whatever arrives, the board must
 * answer within its buffer with a valid CRC, and never hold a value outside its limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/board.h"
#include "../core/crc16.h"
#include "../core/modbus.h"

#define ID 1

static void check_invariants(const board_t *b, uint16_t coil_ma)
{
    if (b->setpoint_ma > BRAKE_SETPOINT_MAX_MA || b->safe_brake_ma > BRAKE_SETPOINT_MAX_MA
        || b->watchdog_ms < WATCHDOG_MIN_MS || b->ramp_ma_per_s == 0 || coil_ma > BRAKE_SETPOINT_MAX_MA
        || (b->control & ~(CTL_BRAKE_ENABLE | CTL_WATCHDOG_ENABLE)) != 0
        || ((b->control & CTL_BRAKE_ENABLE) && !(b->control & CTL_WATCHDOG_ENABLE))) {
        abort();
    }
}

/* Record format: [length][flags][length bytes]. Flags bit 0: replace the last two bytes with a
 * correct CRC (so the fuzzer reaches the handler, not only the CRC check); bits 1-7: ms to
 * tick afterwards; a record with the CRC bit also gets silence (end of frame) after it. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    board_t b;
    rtu_rx_t rx;
    uint8_t frame[MB_FRAME_MAX + 64];
    uint8_t resp[MB_RESPONSE_MAX + 16];
    board_init(&b);
    rtu_rx_init(&rx);
    board_inputs_t in = {false, true, 0, 300, 24000};
    size_t i = 0;
    while (i + 2 <= size) {
        size_t len = data[i];
        uint8_t flags = data[i + 1];
        i += 2;
        if (len > size - i) {
            len = size - i;
        }
        memcpy(frame, data + i, len);
        i += len;
        if ((flags & 1u) && len >= 4) {
            uint16_t crc = crc16_modbus(frame, len - 2);
            frame[len - 2] = (uint8_t)(crc & 0xFF);
            frame[len - 1] = (uint8_t)(crc >> 8);
        }
        for (size_t k = 0; k < len; k++) {
            rtu_rx_byte(&rx, frame[k]);
        }
        if (flags & 1u) {
            rtu_rx_silence(&rx);
        }
        if (rx.ready) {
            board_latch(&b, (uint32_t)(i * 977u));
            memset(resp, 0xA5, sizeof resp);
            uint16_t n = modbus_handle(&b, ID, rx.buf, rx.len, resp);
            rtu_rx_release(&rx);
            if (n > MB_RESPONSE_MAX || resp[MB_RESPONSE_MAX] != 0xA5) {
                abort(); /* wrote past the answer buffer */
            }
            if (n > 0) {
                uint16_t crc = crc16_modbus(resp, n - 2u);
                if (n < 5 || resp[0] != ID || resp[n - 2] != (crc & 0xFF) || resp[n - 1] != (crc >> 8)) {
                    abort();
                }
            }
        }
        in.estop_pressed = (flags & 0x40u) != 0;
        in.coil_current_ma = (uint16_t)(flags * 37u);
        uint16_t coil = 0;
        for (uint8_t ms = (uint8_t)(flags >> 1); ms > 0; ms--) {
            coil = board_tick_ms(&b, &in);
        }
        check_invariants(&b, coil);
    }
    return 0;
}
