#include "coil.h"

void coil_init(coil_drive_t *c)
{
    c->trim = 0;
}

uint16_t coil_duty(coil_drive_t *c, uint16_t command_ma, uint16_t measured_ma, uint16_t supply_mv,
                   uint16_t duty_max)
{
    if (command_ma == 0 || supply_mv == 0) {
        c->trim = 0;
        return 0;
    }
    /* mA x mohm / 1000 = the mV the coil needs; over the supply's mV = the fraction of full duty.
     * 32-bit throughout: 3000 mA x 6000 mohm and 18000 mV x 1023 both fit. */
    uint32_t needed_mv = (uint32_t)command_ma * COIL_RESISTANCE_MOHM / 1000u;
    int32_t feed = (int32_t)(needed_mv * duty_max / supply_mv);
    int32_t limit = ((int32_t)duty_max * COIL_TRIM_MAX_PERCENT / 100) << COIL_TRIM_SHIFT;
    c->trim += (int32_t)command_ma - (int32_t)measured_ma;
    if (c->trim > limit) {
        c->trim = limit;
    } else if (c->trim < -limit) {
        c->trim = -limit;
    }
    int32_t duty = feed + c->trim / (1 << COIL_TRIM_SHIFT);
    if (duty < 0) {
        return 0;
    }
    return duty > duty_max ? duty_max : (uint16_t)duty;
}
