/* The ATmega328P hardware layer: everything the core needs from the chip, and nothing else.
 *
 * Pins (docs/hardware.md has the schematic-level wiring):
 *   PD0/PD1  UART RX/TX to the RS-485 transceiver   PD4  transceiver DE + /RE (high = send)
 *   PD2/PD3  encoder A/B (INT0/INT1, any edge)       PD5  e-stop sense (high = loop open)
 *   PD6      safety key (low = key in)                PB1  OC1A: coil MOSFET gate driver
 *   PC0      coil current (shunt amplifier, 1 mV/mA)  PC1  board temperature (MCP9700)
 *   PC2      supply voltage (1/6 divider)
 */
#ifndef MILL_HAL_H
#define MILL_HAL_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/board.h"
#include "../core/modbus.h"

#define HAL_PWM_TOP 1023u  /* 10-bit PWM: 18 kHz at 18.432 MHz, above hearing */

void hal_init(void);
/* Milliseconds elapsed since the last call (the 1 kHz timer counts them). */
uint8_t hal_take_ticks(void);
/* The quadrature counter, read atomically. */
uint32_t hal_encoder_count(void);
/* This millisecond's measurements. */
void hal_read_inputs(board_inputs_t *in);
void hal_set_coil_duty(uint16_t duty);
/* Send an answer; the transceiver drives the bus until the last stop bit is out. */
void hal_send(const uint8_t *data, uint16_t len);
bool hal_sending(void);
/* Sleep until an interrupt, unless there is work (ticks or a frame) already. */
void hal_idle(bool work_pending);
void hal_feed_watchdog(void);

/* The receiver, filled by the UART and silence-timer interrupts, read by the main loop. */
extern rtu_rx_t hal_rx;

#endif
