/* Coil current control: PWM duty from the commanded current, the supply voltage and the
 * measured current (feed-forward from the coil's resistance, integral trim for the rest). */
#ifndef MILL_COIL_H
#define MILL_COIL_H

#include <stdint.h>

#define COIL_RESISTANCE_MOHM 6000u  /* nominal coil: 6 ohm (24 V drives it to 4 A at full duty) */
/* Integral gain: 1/1024 of a duty count per mA per ms. One count drives ~3.7 mA, so the trim
 * settles in ~0.3 s: several coil time constants (L/R ~ 30 ms), hence no overshoot. */
#define COIL_TRIM_SHIFT 10
#define COIL_TRIM_MAX_PERCENT 25    /* the trim corrects resistance drift, not a wrong coil */

typedef struct {
    int32_t trim; /* integral of the current error, in duty counts << COIL_TRIM_SHIFT */
} coil_drive_t;

void coil_init(coil_drive_t *c);

/* Duty (0..duty_max) for the next millisecond. */
uint16_t coil_duty(coil_drive_t *c, uint16_t command_ma, uint16_t measured_ma, uint16_t supply_mv,
                   uint16_t duty_max);

#endif
