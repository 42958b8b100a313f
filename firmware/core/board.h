/* The board's behaviour, independent of any hardware: register map v1 (docs/board.md), board
 * clock, watchdog with safe brake, setpoint ramp, fault latching and reset, e-stop and safety
 * key, coil current supervision. The hardware layer feeds it inputs once per millisecond and
 * drives the coil from what it returns; the Modbus layer (modbus.h) reads and writes it. */
#ifndef MILL_BOARD_H
#define MILL_BOARD_H

#include <stdbool.h>
#include <stdint.h>

#define BOARD_FW_VERSION ((1u << 8) | 0u) /* 1.0: major * 256 + minor */

/* Register map v1. */
#define REG_INPUT_COUNT 11u      /* input registers 0..10 */
#define REG_HOLDING_COUNT 5u     /* holding registers 0..4 */
#define REG_MIRROR_BASE 100u     /* holding 100..110 mirror input 0..10 */

enum input_register {
    IN_ENCODER_HI = 0, IN_ENCODER_LO, IN_BOARD_TIME_MS, IN_BRAKE_CURRENT_MA, IN_STATUS,
    IN_BOARD_TEMP, IN_SUPPLY_MV, IN_HEART_RATE, IN_HANDLE_FORCE, IN_FAULT_CODE, IN_FW_VERSION,
};

enum holding_register {
    HR_BRAKE_SETPOINT_MA = 0, HR_CONTROL, HR_WATCHDOG_MS, HR_SAFE_BRAKE_MA, HR_RAMP_MA_PER_S,
};

enum status_bit {
    ST_ESTOP = 1u << 0, ST_BRAKE_FAULT = 1u << 1, ST_OVER_TEMPERATURE = 1u << 2,
    ST_WATCHDOG_TRIPPED = 1u << 3, ST_UNDER_VOLTAGE = 1u << 4, ST_SAFETY_KEY_REMOVED = 1u << 5,
    ST_BRAKE_ENABLED = 1u << 6,
};

enum control_bit {
    CTL_BRAKE_ENABLE = 1u << 0, CTL_FAULT_RESET = 1u << 1, CTL_WATCHDOG_ENABLE = 1u << 2,
};

enum fault_code {
    FAULT_NONE = 0, FAULT_WATCHDOG = 1, FAULT_ESTOP = 2, FAULT_BRAKE_COIL = 3,
    FAULT_OVER_TEMPERATURE = 4, FAULT_UNDER_VOLTAGE = 5, FAULT_SAFETY_KEY = 6,
};

/* Limits, each defined once. */
#define BRAKE_SETPOINT_MAX_MA 3000u
#define WATCHDOG_MIN_MS 10u
#define DEFAULT_WATCHDOG_MS 250u
#define DEFAULT_SAFE_BRAKE_MA 1200u
#define DEFAULT_RAMP_MA_PER_S 6000u
#define OVER_CURRENT_MA 3400u          /* measured above this for OVER_CURRENT_MS: coil fault */
#define OVER_CURRENT_MS 5u
#define OPEN_COIL_MIN_COMMAND_MA 300u  /* commanded at least this, measured under a quarter of it */
#define OPEN_COIL_MS 200u              /* ...for this long (the coil settles in ~5 time constants) */
#define OVER_TEMPERATURE_DC 850        /* 85.0 degC: trips; clears below the hysteresis */
#define OVER_TEMPERATURE_CLEAR_DC 750
#define UNDER_VOLTAGE_MV 18000u        /* the coil cannot reach full current below this */
#define HANDLE_FORCE_NOT_FITTED (-32768)

/* What the hardware layer measured during the last millisecond. */
typedef struct {
    bool estop_pressed;
    bool safety_key_present;
    uint16_t coil_current_ma;
    int16_t temp_dc;        /* 0.1 degC */
    uint16_t supply_mv;
} board_inputs_t;

typedef struct {
    /* holding registers */
    uint16_t setpoint_ma;
    uint16_t control;       /* without the self-clearing fault-reset bit */
    uint16_t watchdog_ms;
    uint16_t safe_brake_ma;
    uint16_t ramp_ma_per_s;
    /* state */
    uint32_t encoder_count; /* latched by board_latch() from the hardware counter */
    uint16_t clock_ms;      /* wraps at 65536 */
    uint16_t latched_ms;    /* board clock when encoder_count was latched */
    uint16_t ms_since_command;
    uint16_t conditions;    /* status bits that hold while their cause lasts */
    bool watchdog_tripped;
    bool coil_fault;        /* latched until a fault reset */
    uint16_t fault_code;    /* last fault, latched until a fault reset */
    uint32_t coil_command_ua; /* ramped coil current command, micro-amps (mA/s = uA/ms) */
    uint16_t over_current_ms;
    uint16_t open_coil_ms;
    board_inputs_t last;    /* the latest measurements, for the input registers */
} board_t;

void board_init(board_t *b);

/* One millisecond: clock, watchdog, faults, ramp. Returns the coil current to drive, mA. */
uint16_t board_tick_ms(board_t *b, const board_inputs_t *in);

/* Take the hardware counter's value now, with the board clock, for the next register read. */
void board_latch(board_t *b, uint32_t encoder_count);

/* The status register (input 4). */
uint16_t board_status(const board_t *b);

/* Modbus exception codes, 0 = success. */
enum { MB_OK = 0, MB_ILLEGAL_FUNCTION = 1, MB_ILLEGAL_ADDRESS = 2, MB_ILLEGAL_VALUE = 3 };

/* Read `count` input registers from `address`. */
uint8_t board_read_input(const board_t *b, uint16_t address, uint16_t count, uint16_t *out);
/* Read holding registers: 0..4, or the read-only mirror 100..110. */
uint8_t board_read_holding(const board_t *b, uint16_t address, uint16_t count, uint16_t *out);
/* Write holding registers; the whole write is validated first, so a refused write changes
 * nothing. Values arrive big-endian from the frame: 2 bytes per register. */
uint8_t board_write_holding(board_t *b, uint16_t address, uint16_t count, const uint8_t *be_values);

#endif
