/* Modbus RTU slave: framing by silence (3.5 characters) and the request handler. */
#ifndef MILL_MODBUS_H
#define MILL_MODBUS_H

#include <stdbool.h>
#include <stdint.h>

#include "board.h"

#define MB_FRAME_MAX 256u    /* the longest RTU frame the standard allows */
#define MB_RESPONSE_MAX 64u  /* the longest answer this map can give (11 registers) fits */
#define MB_BROADCAST_ID 0u

/* Function codes served. */
enum {
    FC_READ_HOLDING = 3, FC_READ_INPUT = 4, FC_WRITE_SINGLE = 6, FC_WRITE_MULTIPLE = 16,
    FC_READ_WRITE_MULTIPLE = 23,
};

/* Receiver state, filled byte by byte from the UART interrupt. */
typedef struct {
    uint8_t buf[MB_FRAME_MAX];
    uint16_t len;
    bool overflow;        /* the frame was too long, or arrived while one was pending: drop it */
    volatile bool ready;  /* a complete frame waits for the main loop */
} rtu_rx_t;

void rtu_rx_init(rtu_rx_t *rx);
/* A received byte (call from the UART receive interrupt). */
void rtu_rx_byte(rtu_rx_t *rx, uint8_t byte);
/* The line was silent for 3.5 characters: whatever was received is one frame. */
void rtu_rx_silence(rtu_rx_t *rx);
/* The main loop has handled the pending frame. */
void rtu_rx_release(rtu_rx_t *rx);

/* Handle one received frame. Returns the length of the answer written to `resp`
 * (at most MB_RESPONSE_MAX), or 0 for silence: bad CRC, another device id, a broadcast. */
uint16_t modbus_handle(board_t *b, uint8_t device_id, const uint8_t *req, uint16_t len, uint8_t *resp);

#endif
