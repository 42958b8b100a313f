/* Quadrature decoding: one step of the 2-bit Gray code from the encoder's A and B channels.
 * Inline: it runs in the edge interrupt, up to ~50 000 times a second at sprint speed. */
#ifndef MILL_QUADRATURE_H
#define MILL_QUADRATURE_H

#include <stdint.h>

/* Counts moved between two A/B states (bit 1 = A, bit 0 = B): +1 forward (A leads B), -1
 * backward, 0 for no change or a skipped state (both channels changed at once: an edge was
 * missed, so the direction is unknown and the step is not counted). */
static inline int8_t quadrature_step(uint8_t previous_ab, uint8_t ab)
{
    /* Index: previous state * 4 + new state. Forward order 00 -> 10 -> 11 -> 01 -> 00. */
    static const int8_t STEP[16] = {
        /* prev 00 */ 0, -1, +1, 0,
        /* prev 01 */ +1, 0, 0, -1,
        /* prev 10 */ -1, 0, 0, +1,
        /* prev 11 */ 0, +1, -1, 0,
    };
    return STEP[((previous_ab & 3u) << 2) | (ab & 3u)];
}

#endif
