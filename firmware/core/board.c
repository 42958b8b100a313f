#include "board.h"

#include <string.h>

void board_init(board_t *b)
{
    memset(b, 0, sizeof *b);
    b->watchdog_ms = DEFAULT_WATCHDOG_MS;
    b->safe_brake_ma = DEFAULT_SAFE_BRAKE_MA;
    b->ramp_ma_per_s = DEFAULT_RAMP_MA_PER_S;
    b->last.safety_key_present = true;
    b->last.supply_mv = UNDER_VOLTAGE_MV;
}

static bool forced_safe(const board_t *b)
{
    /* The safety key is wired like the e-stop: both force the safe brake, as does a trip. */
    return b->watchdog_tripped || (b->conditions & (ST_ESTOP | ST_SAFETY_KEY_REMOVED)) != 0;
}

static bool brake_active(const board_t *b)
{
    if (b->coil_fault) {
        return false; /* a shorted or open coil is never driven until a technician resets it */
    }
    return forced_safe(b) || (b->control & CTL_BRAKE_ENABLE) != 0;
}

static uint16_t coil_target_ma(const board_t *b)
{
    if (!brake_active(b)) {
        return 0;
    }
    uint16_t target = forced_safe(b) ? b->safe_brake_ma : b->setpoint_ma;
    if ((b->conditions & ST_OVER_TEMPERATURE) && target > b->safe_brake_ma) {
        target = b->safe_brake_ma; /* a hot coil gets no more than the safe current */
    }
    return target;
}

uint16_t board_status(const board_t *b)
{
    uint16_t status = b->conditions;
    if (b->watchdog_tripped) {
        status |= ST_WATCHDOG_TRIPPED;
    }
    if (b->coil_fault) {
        status |= ST_BRAKE_FAULT;
    }
    if (brake_active(b)) {
        status |= ST_BRAKE_ENABLED;
    }
    return status;
}

/* Set or clear a condition bit; a new condition latches its fault code. */
static void condition(board_t *b, uint16_t bit, bool present, uint16_t code)
{
    if (present && !(b->conditions & bit)) {
        b->fault_code = code;
    }
    if (present) {
        b->conditions |= bit;
    } else {
        b->conditions &= (uint16_t)~bit;
    }
}

static void supervise_coil(board_t *b, const board_inputs_t *in)
{
    uint16_t command_ma = (uint16_t)(b->coil_command_ua / 1000u);
    b->over_current_ms = in->coil_current_ma > OVER_CURRENT_MA ? (uint16_t)(b->over_current_ms + 1u) : 0u;
    /* With the e-stop pressed the hardware loop has cut coil power: no current is expected. */
    bool starved = !(b->conditions & ST_ESTOP) && command_ma >= OPEN_COIL_MIN_COMMAND_MA
                   && in->coil_current_ma < command_ma / 4u;
    b->open_coil_ms = starved ? (uint16_t)(b->open_coil_ms + 1u) : 0u;
    if (b->over_current_ms >= OVER_CURRENT_MS || b->open_coil_ms >= OPEN_COIL_MS) {
        if (!b->coil_fault) {
            b->fault_code = FAULT_BRAKE_COIL;
        }
        b->coil_fault = true;
        b->coil_command_ua = 0; /* cut at once: no ramp for a faulty coil */
    }
}

static void ramp(board_t *b)
{
    uint32_t target_ua = (uint32_t)coil_target_ma(b) * 1000u;
    uint32_t step_ua = b->ramp_ma_per_s; /* mA/s is uA per ms */
    if (b->coil_command_ua < target_ua) {
        b->coil_command_ua = target_ua - b->coil_command_ua > step_ua ? b->coil_command_ua + step_ua : target_ua;
    } else if (b->coil_command_ua > target_ua) {
        b->coil_command_ua = b->coil_command_ua - target_ua > step_ua ? b->coil_command_ua - step_ua : target_ua;
    }
}

uint16_t board_tick_ms(board_t *b, const board_inputs_t *in)
{
    b->last = *in;
    b->clock_ms++;
    if (b->ms_since_command < UINT16_MAX) {
        b->ms_since_command++;
    }
    if ((b->control & CTL_WATCHDOG_ENABLE) && !b->watchdog_tripped && b->ms_since_command > b->watchdog_ms) {
        b->watchdog_tripped = true;
        b->fault_code = FAULT_WATCHDOG;
    }
    bool was_estop = (b->conditions & ST_ESTOP) != 0;
    condition(b, ST_ESTOP, in->estop_pressed, FAULT_ESTOP);
    if (was_estop && !in->estop_pressed) {
        /* The e-stop loop had cut the coil's supply: restart the ramp from what the coil really
         * carries, so the current comes back through the ramp, not as a step. */
        b->coil_command_ua = (uint32_t)in->coil_current_ma * 1000u;
    }
    condition(b, ST_SAFETY_KEY_REMOVED, !in->safety_key_present, FAULT_SAFETY_KEY);
    bool hot = in->temp_dc >= OVER_TEMPERATURE_DC
               || ((b->conditions & ST_OVER_TEMPERATURE) && in->temp_dc >= OVER_TEMPERATURE_CLEAR_DC);
    condition(b, ST_OVER_TEMPERATURE, hot, FAULT_OVER_TEMPERATURE);
    condition(b, ST_UNDER_VOLTAGE, in->supply_mv < UNDER_VOLTAGE_MV, FAULT_UNDER_VOLTAGE);
    supervise_coil(b, in);
    if (!b->coil_fault) {
        ramp(b);
    }
    return (uint16_t)(b->coil_command_ua / 1000u);
}

void board_latch(board_t *b, uint32_t encoder_count)
{
    b->encoder_count = encoder_count;
    b->latched_ms = b->clock_ms;
}

static uint16_t input_register(const board_t *b, uint16_t index)
{
    switch (index) {
    case IN_ENCODER_HI: return (uint16_t)(b->encoder_count >> 16);
    case IN_ENCODER_LO: return (uint16_t)(b->encoder_count & 0xFFFFu);
    case IN_BOARD_TIME_MS: return b->latched_ms;
    case IN_BRAKE_CURRENT_MA: return b->last.coil_current_ma;
    case IN_STATUS: return board_status(b);
    case IN_BOARD_TEMP: return (uint16_t)b->last.temp_dc;
    case IN_SUPPLY_MV: return b->last.supply_mv;
    case IN_HEART_RATE: return 0; /* this board has no chest-strap receiver: "no signal" */
    case IN_HANDLE_FORCE: return (uint16_t)HANDLE_FORCE_NOT_FITTED;
    case IN_FAULT_CODE: return b->fault_code;
    default: return BOARD_FW_VERSION;
    }
}

uint8_t board_read_input(const board_t *b, uint16_t address, uint16_t count, uint16_t *out)
{
    if (address >= REG_INPUT_COUNT || count > REG_INPUT_COUNT - address) {
        return MB_ILLEGAL_ADDRESS;
    }
    for (uint16_t i = 0; i < count; i++) {
        out[i] = input_register(b, (uint16_t)(address + i));
    }
    return MB_OK;
}

uint8_t board_read_holding(const board_t *b, uint16_t address, uint16_t count, uint16_t *out)
{
    if (address >= REG_MIRROR_BASE) {
        return board_read_input(b, (uint16_t)(address - REG_MIRROR_BASE), count, out);
    }
    if (address >= REG_HOLDING_COUNT || count > REG_HOLDING_COUNT - address) {
        return MB_ILLEGAL_ADDRESS;
    }
    const uint16_t holding[REG_HOLDING_COUNT] = {
        b->setpoint_ma, b->control, b->watchdog_ms, b->safe_brake_ma, b->ramp_ma_per_s,
    };
    for (uint16_t i = 0; i < count; i++) {
        out[i] = holding[address + i];
    }
    return MB_OK;
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint8_t check_value(uint16_t reg, uint16_t value)
{
    switch (reg) {
    case HR_BRAKE_SETPOINT_MA:
    case HR_SAFE_BRAKE_MA:
        return value > BRAKE_SETPOINT_MAX_MA ? MB_ILLEGAL_VALUE : MB_OK;
    case HR_CONTROL:
        if (value & (uint16_t)~(CTL_BRAKE_ENABLE | CTL_FAULT_RESET | CTL_WATCHDOG_ENABLE)) {
            return MB_ILLEGAL_VALUE;
        }
        /* Safety rule: the watchdog is armed whenever the brake is enabled. */
        return (value & CTL_BRAKE_ENABLE) && !(value & CTL_WATCHDOG_ENABLE) ? MB_ILLEGAL_VALUE : MB_OK;
    case HR_WATCHDOG_MS:
        return value < WATCHDOG_MIN_MS ? MB_ILLEGAL_VALUE : MB_OK;
    default: /* HR_RAMP_MA_PER_S: zero would leave the coil where it is, even on a trip */
        return value == 0 ? MB_ILLEGAL_VALUE : MB_OK;
    }
}

static void fault_reset(board_t *b)
{
    b->watchdog_tripped = false;
    b->coil_fault = false;
    b->over_current_ms = 0;
    b->open_coil_ms = 0;
    /* A cause that is still there keeps its code: a reset does not hide a pressed e-stop. */
    if (b->conditions & ST_ESTOP) {
        b->fault_code = FAULT_ESTOP;
    } else if (b->conditions & ST_SAFETY_KEY_REMOVED) {
        b->fault_code = FAULT_SAFETY_KEY;
    } else if (b->conditions & ST_OVER_TEMPERATURE) {
        b->fault_code = FAULT_OVER_TEMPERATURE;
    } else if (b->conditions & ST_UNDER_VOLTAGE) {
        b->fault_code = FAULT_UNDER_VOLTAGE;
    } else {
        b->fault_code = FAULT_NONE;
    }
}

uint8_t board_write_holding(board_t *b, uint16_t address, uint16_t count, const uint8_t *be_values)
{
    if (count == 0 || address >= REG_HOLDING_COUNT || count > REG_HOLDING_COUNT - address) {
        return MB_ILLEGAL_ADDRESS;
    }
    for (uint16_t i = 0; i < count; i++) {
        uint8_t code = check_value((uint16_t)(address + i), be16(be_values + 2 * i));
        if (code != MB_OK) {
            return code;
        }
    }
    for (uint16_t i = 0; i < count; i++) {
        uint16_t value = be16(be_values + 2 * i);
        switch (address + i) {
        case HR_BRAKE_SETPOINT_MA:
            b->setpoint_ma = value;
            b->ms_since_command = 0;
            break;
        case HR_CONTROL:
            if (value & CTL_FAULT_RESET) {
                fault_reset(b);
            }
            b->control = value & (uint16_t)~CTL_FAULT_RESET; /* self-clearing: never stored */
            b->ms_since_command = 0;
            break;
        case HR_WATCHDOG_MS:
            b->watchdog_ms = value;
            break;
        case HR_SAFE_BRAKE_MA:
            b->safe_brake_ma = value;
            break;
        default:
            b->ramp_ma_per_s = value;
            break;
        }
    }
    return MB_OK;
}
