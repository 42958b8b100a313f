/* The board's main loop: 1 ms ticks drive the core, complete frames get their answer. */
#include <avr/io.h>
#include <avr/wdt.h>

#include "../core/board.h"
#include "../core/coil.h"
#include "../core/modbus.h"
#include "hal.h"

#ifdef MILL_SIMAVR
/* Tells simavr which chip and clock this ELF is for (a section the real chip never loads). */
#include "avr_mcu_section.h"
AVR_MCU(F_CPU, "atmega328p");
AVR_MCU_VOLTAGES(5000, 5000, 5000);
#endif

#define DEVICE_ID 1u

/* A watchdog reset must not loop: the WDT stays armed after a reset until switched off. */
void early_wdt_off(void) __attribute__((naked, used, section(".init3")));
void early_wdt_off(void)
{
    MCUSR = 0;
    wdt_disable();
}

static board_t board;
static coil_drive_t coil;
static uint8_t answer[MB_RESPONSE_MAX];

int main(void)
{
    board_init(&board);
    coil_init(&coil);
    hal_init();
    for (;;) {
        hal_feed_watchdog();
        for (uint8_t n = hal_take_ticks(); n > 0; n--) {
            board_inputs_t in;
            hal_read_inputs(&in);
            uint16_t command_ma = board_tick_ms(&board, &in);
            if (in.estop_pressed) {
                /* The relay has cut the coil: no current to trim against. A trim wound up now
                 * would jolt the coil when the loop closes again. */
                coil_init(&coil);
            }
            hal_set_coil_duty(coil_duty(&coil, command_ma, in.coil_current_ma, in.supply_mv, HAL_PWM_TOP));
        }
        if (hal_rx.ready && !hal_sending()) {
            board_latch(&board, hal_encoder_count());
            uint16_t len = modbus_handle(&board, DEVICE_ID, hal_rx.buf, hal_rx.len, answer);
            rtu_rx_release(&hal_rx);
            if (len > 0) {
                hal_send(answer, len);
            }
        }
        hal_idle(false);
    }
}
