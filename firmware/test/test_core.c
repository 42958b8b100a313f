/* Native unit tests of the hardware-independent core. Each test is one behaviour; the run ends
 * with "N passed, N failed" and exits non-zero on any failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/board.h"
#include "../core/coil.h"
#include "../core/crc16.h"
#include "../core/modbus.h"
#include "../core/quadrature.h"

static int failures_in_test;
static int passed, failed;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            printf("  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);           \
            failures_in_test++;                                                         \
        }                                                                               \
    } while (0)

#define CHECK_EQ(a, b)                                                                  \
    do {                                                                                \
        long long a_ = (long long)(a), b_ = (long long)(b);                             \
        if (a_ != b_) {                                                                 \
            printf("  %s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, #a, \
                   a_, #b, b_);                                                         \
            failures_in_test++;                                                         \
        }                                                                               \
    } while (0)

#define ID 1

static const board_inputs_t HEALTHY = {false, true, 0, 300, 24000};

/* --- helpers ----------------------------------------------------------------------------- */
static uint16_t frame(uint8_t *buf, const uint8_t *pdu, uint16_t pdu_len, uint8_t id)
{
    buf[0] = id;
    memcpy(buf + 1, pdu, pdu_len);
    uint16_t crc = crc16_modbus(buf, (size_t)pdu_len + 1);
    buf[pdu_len + 1] = (uint8_t)(crc & 0xFF);
    buf[pdu_len + 2] = (uint8_t)(crc >> 8);
    return (uint16_t)(pdu_len + 3);
}

/* Send a PDU to the board; returns the answer's length, answer in `resp`. */
static uint16_t request(board_t *b, const uint8_t *pdu, uint16_t pdu_len, uint8_t *resp)
{
    uint8_t req[MB_FRAME_MAX];
    uint16_t len = frame(req, pdu, pdu_len, ID);
    memset(resp, 0xEE, MB_RESPONSE_MAX);
    return modbus_handle(b, ID, req, len, resp);
}

static bool crc_ok(const uint8_t *resp, uint16_t len)
{
    uint16_t crc = crc16_modbus(resp, (size_t)len - 2);
    return resp[len - 2] == (crc & 0xFF) && resp[len - 1] == (crc >> 8);
}

static uint8_t write_reg(board_t *b, uint16_t address, uint16_t value)
{
    uint8_t pdu[] = {6, (uint8_t)(address >> 8), (uint8_t)address, (uint8_t)(value >> 8), (uint8_t)value};
    uint8_t resp[MB_RESPONSE_MAX];
    uint16_t n = request(b, pdu, sizeof pdu, resp);
    return n == 5 ? resp[2] : 0;
}

static uint16_t read_input(board_t *b, uint16_t address)
{
    uint16_t out[REG_INPUT_COUNT];
    CHECK_EQ(board_read_input(b, address, 1, out), MB_OK);
    return out[0];
}

/* Run with an ideal coil: the measured current is what was driven the millisecond before. */
static uint16_t run_ms(board_t *b, board_inputs_t in, int ms)
{
    uint16_t coil = (uint16_t)(b->coil_command_ua / 1000u);
    for (int i = 0; i < ms; i++) {
        in.coil_current_ma = coil;
        coil = board_tick_ms(b, &in);
    }
    return coil;
}

/* Run with the measured current fixed at in.coil_current_ma (a faulty coil or sensor). */
static uint16_t run_measured(board_t *b, board_inputs_t in, int ms)
{
    uint16_t coil = 0;
    for (int i = 0; i < ms; i++) {
        coil = board_tick_ms(b, &in);
    }
    return coil;
}

/* A board armed as the controller arms it: watchdog on, brake on at `setpoint`. */
static void arm(board_t *b, uint16_t setpoint)
{
    board_init(b);
    CHECK_EQ(write_reg(b, HR_CONTROL, CTL_WATCHDOG_ENABLE | CTL_BRAKE_ENABLE), 0);
    CHECK_EQ(write_reg(b, HR_BRAKE_SETPOINT_MA, setpoint), 0);
}

/* --- CRC, quadrature ------------------------------------------------------------------- */
static void test_crc_matches_the_modbus_reference_vector(void)
{
    /* Read 2 holding registers at 0 from device 1: the spec's example frame ends C4 0B. */
    const uint8_t msg[] = {0x01, 0x03, 0x00, 0x00, 0x00, 0x02};
    CHECK_EQ(crc16_modbus(msg, sizeof msg), 0x0BC4);
}

static void test_quadrature_counts_forward_and_backward(void)
{
    const uint8_t forward[] = {0, 2, 3, 1, 0};
    int sum = 0;
    for (int i = 0; i < 4; i++) {
        sum += quadrature_step(forward[i], forward[i + 1]);
    }
    CHECK_EQ(sum, 4);
    sum = 0;
    for (int i = 4; i > 0; i--) {
        sum += quadrature_step(forward[i], forward[i - 1]);
    }
    CHECK_EQ(sum, -4);
}

static void test_quadrature_ignores_a_double_step_and_no_change(void)
{
    CHECK_EQ(quadrature_step(0, 3), 0);
    CHECK_EQ(quadrature_step(1, 2), 0);
    CHECK_EQ(quadrature_step(2, 2), 0);
}

static void test_encoder_count_wraps_at_2_to_the_32(void)
{
    board_t b;
    board_init(&b);
    uint32_t count = 0xFFFFFFFFu;
    count += (uint32_t)quadrature_step(0, 2); /* one step forward from -1 */
    board_latch(&b, count);
    CHECK_EQ(read_input(&b, IN_ENCODER_HI), 0);
    CHECK_EQ(read_input(&b, IN_ENCODER_LO), 0);
    board_latch(&b, (uint32_t)-2);
    CHECK_EQ(read_input(&b, IN_ENCODER_HI), 0xFFFF);
    CHECK_EQ(read_input(&b, IN_ENCODER_LO), 0xFFFE);
}

/* --- clock ------------------------------------------------------------------------------ */
static void test_board_clock_counts_milliseconds_and_wraps(void)
{
    board_t b;
    board_init(&b);
    run_ms(&b, HEALTHY, 65535);
    board_latch(&b, 0);
    CHECK_EQ(read_input(&b, IN_BOARD_TIME_MS), 65535);
    run_ms(&b, HEALTHY, 3);
    board_latch(&b, 0);
    CHECK_EQ(read_input(&b, IN_BOARD_TIME_MS), 2);
}

static void test_board_time_is_the_time_the_count_was_latched(void)
{
    board_t b;
    board_init(&b);
    run_ms(&b, HEALTHY, 10);
    board_latch(&b, 1234);
    run_ms(&b, HEALTHY, 5);
    CHECK_EQ(read_input(&b, IN_BOARD_TIME_MS), 10);
    CHECK_EQ(read_input(&b, IN_ENCODER_LO), 1234);
}

/* --- Modbus functions ------------------------------------------------------------------- */
static void test_fc4_reads_the_input_registers(void)
{
    board_t b;
    board_init(&b);
    board_inputs_t in = HEALTHY;
    in.coil_current_ma = 777;
    board_tick_ms(&b, &in);
    board_latch(&b, 0x12345678u);
    uint8_t pdu[] = {4, 0, 0, 0, 11};
    uint8_t resp[MB_RESPONSE_MAX];
    uint16_t n = request(&b, pdu, sizeof pdu, resp);
    CHECK_EQ(n, 5 + 22);
    CHECK(crc_ok(resp, n));
    CHECK_EQ(resp[2], 22);
    CHECK_EQ((resp[3] << 8) | resp[4], 0x1234);
    CHECK_EQ((resp[5] << 8) | resp[6], 0x5678);
    CHECK_EQ((resp[9] << 8) | resp[10], 777);
    CHECK_EQ((resp[19] << 8) | resp[20], 0x8000); /* handle force: not fitted */
    CHECK_EQ((resp[23] << 8) | resp[24], BOARD_FW_VERSION);
}

static void test_fc3_reads_holding_and_the_mirror(void)
{
    board_t b;
    board_init(&b);
    board_latch(&b, 42);
    uint8_t resp[MB_RESPONSE_MAX];
    uint8_t holding[] = {3, 0, 0, 0, 5};
    uint16_t n = request(&b, holding, sizeof holding, resp);
    CHECK_EQ(n, 5 + 10);
    CHECK_EQ((resp[7] << 8) | resp[8], DEFAULT_WATCHDOG_MS);
    CHECK_EQ((resp[9] << 8) | resp[10], DEFAULT_SAFE_BRAKE_MA);
    CHECK_EQ((resp[11] << 8) | resp[12], DEFAULT_RAMP_MA_PER_S);
    uint8_t mirror[] = {3, 0, 100, 0, 11};
    n = request(&b, mirror, sizeof mirror, resp);
    CHECK_EQ(n, 5 + 22);
    CHECK_EQ((resp[5] << 8) | resp[6], 42);
}

static void test_fc6_writes_and_echoes(void)
{
    board_t b;
    board_init(&b);
    uint8_t pdu[] = {6, 0, 0, 0x05, 0xDC};
    uint8_t resp[MB_RESPONSE_MAX];
    uint16_t n = request(&b, pdu, sizeof pdu, resp);
    CHECK_EQ(n, 8);
    CHECK(memcmp(resp + 1, pdu, sizeof pdu) == 0);
    CHECK_EQ(b.setpoint_ma, 1500);
}

static void test_fc16_writes_several_registers(void)
{
    board_t b;
    board_init(&b);
    uint8_t pdu[] = {16, 0, 2, 0, 3, 6, 0x01, 0x2C, 0x03, 0x20, 0x0F, 0xA0};
    uint8_t resp[MB_RESPONSE_MAX];
    uint16_t n = request(&b, pdu, sizeof pdu, resp);
    CHECK_EQ(n, 8);
    CHECK_EQ(resp[1], 16);
    CHECK_EQ((resp[4] << 8) | resp[5], 3);
    CHECK_EQ(b.watchdog_ms, 300);
    CHECK_EQ(b.safe_brake_ma, 800);
    CHECK_EQ(b.ramp_ma_per_s, 4000);
}

static void test_fc23_writes_then_reads_in_one_transaction(void)
{
    board_t b;
    board_init(&b);
    board_latch(&b, 7);
    uint8_t pdu[] = {23, 0, 100, 0, 11, 0, 0, 0, 2, 4, 0x03, 0xE8, 0, CTL_WATCHDOG_ENABLE | CTL_BRAKE_ENABLE};
    uint8_t resp[MB_RESPONSE_MAX];
    uint16_t n = request(&b, pdu, sizeof pdu, resp);
    CHECK_EQ(n, 5 + 22);
    CHECK(crc_ok(resp, n));
    CHECK_EQ(b.setpoint_ma, 1000);
    CHECK_EQ((resp[5] << 8) | resp[6], 7);
    /* The write happened before the read: the status already shows the brake enabled. */
    CHECK((((resp[11] << 8) | resp[12]) & ST_BRAKE_ENABLED) != 0);
}

static void test_unknown_function_gets_exception_1(void)
{
    board_t b;
    board_init(&b);
    uint8_t pdu[] = {5, 0, 0, 0xFF, 0};
    uint8_t resp[MB_RESPONSE_MAX];
    uint16_t n = request(&b, pdu, sizeof pdu, resp);
    CHECK_EQ(n, 5);
    CHECK_EQ(resp[1], 0x85);
    CHECK_EQ(resp[2], MB_ILLEGAL_FUNCTION);
    CHECK(crc_ok(resp, n));
}

static void test_unknown_or_read_only_address_gets_exception_2(void)
{
    board_t b;
    board_init(&b);
    CHECK_EQ(write_reg(&b, 5, 1), MB_ILLEGAL_ADDRESS);
    CHECK_EQ(write_reg(&b, 100, 1), MB_ILLEGAL_ADDRESS);
    uint8_t resp[MB_RESPONSE_MAX];
    uint8_t past_end[] = {4, 0, 10, 0, 2};
    CHECK_EQ(request(&b, past_end, sizeof past_end, resp), 5);
    CHECK_EQ(resp[2], MB_ILLEGAL_ADDRESS);
    uint8_t gap[] = {3, 0, 50, 0, 1};
    CHECK_EQ(request(&b, gap, sizeof gap, resp), 5);
    CHECK_EQ(resp[2], MB_ILLEGAL_ADDRESS);
    uint8_t wide[] = {3, 0, 0, 0, 6};
    CHECK_EQ(request(&b, wide, sizeof wide, resp), 5);
    CHECK_EQ(resp[2], MB_ILLEGAL_ADDRESS);
}

static void test_setpoint_above_3000_gets_exception_3_and_changes_nothing(void)
{
    board_t b;
    board_init(&b);
    CHECK_EQ(write_reg(&b, HR_BRAKE_SETPOINT_MA, 3000), 0);
    CHECK_EQ(write_reg(&b, HR_BRAKE_SETPOINT_MA, 3001), MB_ILLEGAL_VALUE);
    CHECK_EQ(b.setpoint_ma, 3000);
    /* A multi-register write with one bad value writes none of them. */
    uint8_t pdu[] = {16, 0, 2, 0, 2, 4, 0x01, 0x2C, 0x0F, 0xA0};
    uint8_t resp[MB_RESPONSE_MAX];
    CHECK_EQ(request(&b, pdu, sizeof pdu, resp), 5);
    CHECK_EQ(resp[2], MB_ILLEGAL_VALUE);
    CHECK_EQ(b.watchdog_ms, DEFAULT_WATCHDOG_MS);
}

static void test_illegal_values_get_exception_3(void)
{
    board_t b;
    board_init(&b);
    CHECK_EQ(write_reg(&b, HR_CONTROL, CTL_BRAKE_ENABLE), MB_ILLEGAL_VALUE); /* brake without watchdog */
    CHECK_EQ(write_reg(&b, HR_CONTROL, 0x10), MB_ILLEGAL_VALUE);
    CHECK_EQ(write_reg(&b, HR_WATCHDOG_MS, 9), MB_ILLEGAL_VALUE);
    CHECK_EQ(write_reg(&b, HR_SAFE_BRAKE_MA, 3001), MB_ILLEGAL_VALUE);
    CHECK_EQ(write_reg(&b, HR_RAMP_MA_PER_S, 0), MB_ILLEGAL_VALUE);
    uint8_t resp[MB_RESPONSE_MAX];
    uint8_t zero[] = {3, 0, 0, 0, 0};
    CHECK_EQ(request(&b, zero, sizeof zero, resp), 5);
    CHECK_EQ(resp[2], MB_ILLEGAL_VALUE);
    uint8_t too_many[] = {4, 0, 0, 0, 126};
    CHECK_EQ(request(&b, too_many, sizeof too_many, resp), 5);
    CHECK_EQ(resp[2], MB_ILLEGAL_VALUE);
    uint8_t short_read[] = {4, 0, 0, 0};
    CHECK_EQ(request(&b, short_read, sizeof short_read, resp), 5);
    CHECK_EQ(resp[2], MB_ILLEGAL_VALUE);
    uint8_t bad_bytes[] = {16, 0, 0, 0, 2, 3, 0, 1, 0};
    CHECK_EQ(request(&b, bad_bytes, sizeof bad_bytes, resp), 5);
    CHECK_EQ(resp[2], MB_ILLEGAL_VALUE);
}

static void test_fc23_with_a_bad_read_writes_nothing(void)
{
    board_t b;
    board_init(&b);
    uint8_t pdu[] = {23, 0, 50, 0, 1, 0, 0, 0, 1, 2, 0x03, 0xE8};
    uint8_t resp[MB_RESPONSE_MAX];
    CHECK_EQ(request(&b, pdu, sizeof pdu, resp), 5);
    CHECK_EQ(resp[1], 0x80 | 23);
    CHECK_EQ(resp[2], MB_ILLEGAL_ADDRESS);
    CHECK_EQ(b.setpoint_ma, 0);
}

static void test_other_device_id_and_bad_crc_get_silence(void)
{
    board_t b;
    board_init(&b);
    uint8_t req[16], resp[MB_RESPONSE_MAX];
    uint8_t pdu[] = {6, 0, 0, 0x01, 0x00};
    uint16_t len = frame(req, pdu, sizeof pdu, 2);
    CHECK_EQ(modbus_handle(&b, ID, req, len, resp), 0);
    len = frame(req, pdu, sizeof pdu, ID);
    req[3] ^= 0x01;
    CHECK_EQ(modbus_handle(&b, ID, req, len, resp), 0);
    CHECK_EQ(b.setpoint_ma, 0);
    CHECK_EQ(modbus_handle(&b, ID, req, 3, resp), 0);
}

static void test_broadcast_writes_without_answering(void)
{
    board_t b;
    board_init(&b);
    uint8_t req[16], resp[MB_RESPONSE_MAX];
    uint8_t pdu[] = {6, 0, 0, 0x01, 0x00};
    uint16_t len = frame(req, pdu, sizeof pdu, MB_BROADCAST_ID);
    CHECK_EQ(modbus_handle(&b, ID, req, len, resp), 0);
    CHECK_EQ(b.setpoint_ma, 256);
}

/* --- framing ---------------------------------------------------------------------------- */
static void test_silence_ends_a_frame(void)
{
    rtu_rx_t rx;
    rtu_rx_init(&rx);
    rtu_rx_silence(&rx);
    CHECK(!rx.ready); /* silence on an idle line is no frame */
    rtu_rx_byte(&rx, 1);
    rtu_rx_byte(&rx, 2);
    CHECK(!rx.ready);
    rtu_rx_silence(&rx);
    CHECK(rx.ready);
    CHECK_EQ(rx.len, 2);
    rtu_rx_release(&rx);
    CHECK(!rx.ready);
    CHECK_EQ(rx.len, 0);
}

static void test_an_oversized_frame_is_dropped_whole(void)
{
    rtu_rx_t rx;
    rtu_rx_init(&rx);
    for (int i = 0; i < 300; i++) {
        rtu_rx_byte(&rx, (uint8_t)i);
    }
    rtu_rx_silence(&rx);
    CHECK(!rx.ready);
    CHECK_EQ(rx.len, 0);
    rtu_rx_byte(&rx, 9);
    rtu_rx_silence(&rx);
    CHECK(rx.ready);
    CHECK_EQ(rx.buf[0], 9);
}

static void test_bytes_arriving_while_a_frame_is_pending_do_not_corrupt_it(void)
{
    rtu_rx_t rx;
    rtu_rx_init(&rx);
    rtu_rx_byte(&rx, 7);
    rtu_rx_silence(&rx);
    rtu_rx_byte(&rx, 8);
    rtu_rx_byte(&rx, 9);
    rtu_rx_silence(&rx);
    CHECK(rx.ready);
    CHECK_EQ(rx.len, 1);
    CHECK_EQ(rx.buf[0], 7);
}

/* --- watchdog, ramp, faults ------------------------------------------------------------- */
static void test_watchdog_trips_after_watchdog_ms_without_a_command(void)
{
    board_t b;
    arm(&b, 2000);
    run_ms(&b, HEALTHY, DEFAULT_WATCHDOG_MS);
    CHECK(!(board_status(&b) & ST_WATCHDOG_TRIPPED));
    run_ms(&b, HEALTHY, 1);
    CHECK(board_status(&b) & ST_WATCHDOG_TRIPPED);
    CHECK_EQ(b.fault_code, FAULT_WATCHDOG);
}

static void test_commands_keep_the_watchdog_fed(void)
{
    board_t b;
    arm(&b, 500);
    for (int i = 0; i < 100; i++) {
        run_ms(&b, HEALTHY, 20);
        CHECK_EQ(write_reg(&b, HR_BRAKE_SETPOINT_MA, 500), 0);
    }
    CHECK(!(board_status(&b) & ST_WATCHDOG_TRIPPED));
}

static void test_a_trip_applies_the_safe_brake_through_the_ramp(void)
{
    board_t b;
    arm(&b, 200);
    uint16_t coil = run_ms(&b, HEALTHY, 200);
    CHECK_EQ(coil, 200);
    coil = run_ms(&b, HEALTHY, 51); /* tripped at 251 ms, one ramp step since */
    CHECK_EQ(coil, 200 + DEFAULT_RAMP_MA_PER_S / 1000);
    coil = run_ms(&b, HEALTHY, 1000);
    CHECK_EQ(coil, DEFAULT_SAFE_BRAKE_MA);
    /* A new setpoint does not lift the trip... */
    CHECK_EQ(write_reg(&b, HR_BRAKE_SETPOINT_MA, 100), 0);
    CHECK_EQ(run_ms(&b, HEALTHY, 100), DEFAULT_SAFE_BRAKE_MA);
}

static void test_fault_reset_clears_the_trip_and_is_self_clearing(void)
{
    board_t b;
    arm(&b, 300);
    run_ms(&b, HEALTHY, 400);
    CHECK(board_status(&b) & ST_WATCHDOG_TRIPPED);
    CHECK_EQ(write_reg(&b, HR_CONTROL, CTL_WATCHDOG_ENABLE | CTL_BRAKE_ENABLE | CTL_FAULT_RESET), 0);
    CHECK(!(board_status(&b) & ST_WATCHDOG_TRIPPED));
    CHECK_EQ(b.fault_code, FAULT_NONE);
    CHECK_EQ(b.control, CTL_WATCHDOG_ENABLE | CTL_BRAKE_ENABLE);
}

static void test_ramp_limits_the_slew_of_the_coil_current(void)
{
    board_t b;
    arm(&b, 0);
    CHECK_EQ(write_reg(&b, HR_RAMP_MA_PER_S, 1000), 0); /* 1 mA per ms */
    CHECK_EQ(write_reg(&b, HR_BRAKE_SETPOINT_MA, 3000), 0);
    CHECK_EQ(run_ms(&b, HEALTHY, 100), 100);
    CHECK_EQ(write_reg(&b, HR_BRAKE_SETPOINT_MA, 0), 0);
    CHECK_EQ(run_ms(&b, HEALTHY, 40), 60);
}

static void test_slow_ramp_below_1_ma_per_ms_still_moves(void)
{
    board_t b;
    arm(&b, 0);
    CHECK_EQ(write_reg(&b, HR_RAMP_MA_PER_S, 1), 0); /* 1 mA/s */
    CHECK_EQ(write_reg(&b, HR_BRAKE_SETPOINT_MA, 10), 0);
    CHECK_EQ(write_reg(&b, HR_WATCHDOG_MS, 60000), 0);
    CHECK_EQ(run_ms(&b, HEALTHY, 2000), 2);
}

static void test_brake_disabled_drives_no_current(void)
{
    board_t b;
    board_init(&b);
    CHECK_EQ(write_reg(&b, HR_BRAKE_SETPOINT_MA, 2000), 0);
    CHECK_EQ(run_ms(&b, HEALTHY, 1000), 0);
    CHECK(!(board_status(&b) & ST_BRAKE_ENABLED));
}

static void test_estop_forces_the_safe_brake_and_latches_its_fault(void)
{
    board_t b;
    arm(&b, 2500);
    board_inputs_t in = HEALTHY;
    run_ms(&b, in, 100);
    in.estop_pressed = true;
    CHECK_EQ(write_reg(&b, HR_BRAKE_SETPOINT_MA, 2500), 0);
    uint16_t coil = run_ms(&b, in, 200);
    CHECK_EQ(coil, DEFAULT_SAFE_BRAKE_MA);
    CHECK(board_status(&b) & ST_ESTOP);
    CHECK(board_status(&b) & ST_BRAKE_ENABLED);
    CHECK_EQ(b.fault_code, FAULT_ESTOP);
    /* A reset while it is still pressed does not hide it. */
    CHECK_EQ(write_reg(&b, HR_CONTROL, CTL_WATCHDOG_ENABLE | CTL_BRAKE_ENABLE | CTL_FAULT_RESET), 0);
    CHECK_EQ(b.fault_code, FAULT_ESTOP);
    in.estop_pressed = false;
    run_ms(&b, in, 1);
    CHECK(!(board_status(&b) & ST_ESTOP));
    CHECK_EQ(b.fault_code, FAULT_ESTOP); /* latched until reset */
    CHECK_EQ(write_reg(&b, HR_CONTROL, CTL_WATCHDOG_ENABLE | CTL_BRAKE_ENABLE | CTL_FAULT_RESET), 0);
    CHECK_EQ(b.fault_code, FAULT_NONE);
}

static void test_after_an_estop_the_ramp_restarts_from_the_coils_real_current(void)
{
    board_t b;
    arm(&b, 2000);
    CHECK_EQ(write_reg(&b, HR_WATCHDOG_MS, 60000), 0);
    board_inputs_t in = HEALTHY;
    run_ms(&b, in, 500);
    in.estop_pressed = true;
    in.coil_current_ma = 0; /* the relay has cut the coil's supply */
    CHECK_EQ(run_measured(&b, in, 500), DEFAULT_SAFE_BRAKE_MA);
    in.estop_pressed = false;
    CHECK_EQ(run_measured(&b, in, 1), DEFAULT_RAMP_MA_PER_S / 1000); /* from 0, one ramp step */
    CHECK(!(board_status(&b) & ST_BRAKE_FAULT));
}

static void test_removed_safety_key_forces_the_safe_brake(void)
{
    board_t b;
    arm(&b, 100);
    board_inputs_t in = HEALTHY;
    in.safety_key_present = false;
    CHECK_EQ(run_ms(&b, in, 200), DEFAULT_SAFE_BRAKE_MA);
    CHECK(board_status(&b) & ST_SAFETY_KEY_REMOVED);
    CHECK_EQ(b.fault_code, FAULT_SAFETY_KEY);
}

static void test_over_current_cuts_the_coil_at_once_and_latches(void)
{
    board_t b;
    arm(&b, 3000);
    CHECK_EQ(write_reg(&b, HR_WATCHDOG_MS, 60000), 0);
    board_inputs_t in = HEALTHY;
    run_ms(&b, in, 100);
    in.coil_current_ma = OVER_CURRENT_MA + 1;
    CHECK(run_measured(&b, in, OVER_CURRENT_MS - 1) > 0);
    CHECK_EQ(run_measured(&b, in, 1), 0);
    CHECK(board_status(&b) & ST_BRAKE_FAULT);
    CHECK(!(board_status(&b) & ST_BRAKE_ENABLED));
    CHECK_EQ(b.fault_code, FAULT_BRAKE_COIL);
    in.coil_current_ma = 0;
    CHECK_EQ(run_measured(&b, in, 100), 0); /* stays off while latched */
    CHECK_EQ(write_reg(&b, HR_CONTROL, CTL_WATCHDOG_ENABLE | CTL_BRAKE_ENABLE | CTL_FAULT_RESET), 0);
    CHECK(run_measured(&b, in, 10) > 0);
}

static void test_a_coil_that_carries_no_current_is_a_fault(void)
{
    board_t b;
    arm(&b, 1000);
    CHECK_EQ(write_reg(&b, HR_WATCHDOG_MS, 60000), 0);
    board_inputs_t in = HEALTHY; /* measured stays 0: open coil */
    run_measured(&b, in, 1000);
    CHECK(board_status(&b) & ST_BRAKE_FAULT);
    CHECK_EQ(b.fault_code, FAULT_BRAKE_COIL);
}

static void test_over_temperature_caps_the_coil_with_hysteresis(void)
{
    board_t b;
    arm(&b, 2000);
    CHECK_EQ(write_reg(&b, HR_WATCHDOG_MS, 60000), 0);
    board_inputs_t in = HEALTHY;
    in.coil_current_ma = 2000;
    in.temp_dc = OVER_TEMPERATURE_DC;
    CHECK_EQ(run_measured(&b, in, 1000), DEFAULT_SAFE_BRAKE_MA);
    CHECK(board_status(&b) & ST_OVER_TEMPERATURE);
    CHECK_EQ(b.fault_code, FAULT_OVER_TEMPERATURE);
    in.temp_dc = OVER_TEMPERATURE_CLEAR_DC; /* still inside the hysteresis */
    run_measured(&b, in, 10);
    CHECK(board_status(&b) & ST_OVER_TEMPERATURE);
    in.temp_dc = OVER_TEMPERATURE_CLEAR_DC - 1;
    run_measured(&b, in, 10);
    CHECK(!(board_status(&b) & ST_OVER_TEMPERATURE));
}

static void test_under_voltage_is_reported_and_latched(void)
{
    board_t b;
    board_init(&b);
    board_inputs_t in = HEALTHY;
    in.supply_mv = UNDER_VOLTAGE_MV - 1;
    run_ms(&b, in, 1);
    CHECK(board_status(&b) & ST_UNDER_VOLTAGE);
    CHECK_EQ(b.fault_code, FAULT_UNDER_VOLTAGE);
    run_ms(&b, HEALTHY, 1);
    CHECK(!(board_status(&b) & ST_UNDER_VOLTAGE));
    CHECK_EQ(b.fault_code, FAULT_UNDER_VOLTAGE);
}

/* --- coil drive ------------------------------------------------------------------------- */
static void test_coil_drive_settles_on_the_command_despite_a_resistance_error(void)
{
    /* A coil 15 % above nominal resistance, first-order with a 30 ms time constant. */
    coil_drive_t c;
    coil_init(&c);
    double current_ma = 0.0;
    const uint16_t duty_max = 1023;
    for (int ms = 0; ms < 2000; ms++) {
        uint16_t duty = coil_duty(&c, 1500, (uint16_t)current_ma, 24000, duty_max);
        double settled_ma = 24000.0 * duty / duty_max / (COIL_RESISTANCE_MOHM * 1.15 / 1000.0);
        current_ma += (settled_ma - current_ma) / 30.0;
    }
    CHECK(current_ma > 1480.0 && current_ma < 1520.0);
}

static void test_coil_drive_is_off_for_a_zero_command(void)
{
    coil_drive_t c;
    coil_init(&c);
    CHECK(coil_duty(&c, 3000, 0, 24000, 1023) > 0);
    CHECK_EQ(coil_duty(&c, 0, 500, 24000, 1023), 0);
    CHECK_EQ(c.trim, 0);
    CHECK(coil_duty(&c, 3000, 0, 12000, 1023) <= 1023); /* saturates, never overflows */
}

typedef void (*test_fn)(void);
static const struct {
    const char *name;
    test_fn fn;
} TESTS[] = {
#define T(name) {#name, name}
    T(test_crc_matches_the_modbus_reference_vector),
    T(test_quadrature_counts_forward_and_backward),
    T(test_quadrature_ignores_a_double_step_and_no_change),
    T(test_encoder_count_wraps_at_2_to_the_32),
    T(test_board_clock_counts_milliseconds_and_wraps),
    T(test_board_time_is_the_time_the_count_was_latched),
    T(test_fc4_reads_the_input_registers),
    T(test_fc3_reads_holding_and_the_mirror),
    T(test_fc6_writes_and_echoes),
    T(test_fc16_writes_several_registers),
    T(test_fc23_writes_then_reads_in_one_transaction),
    T(test_unknown_function_gets_exception_1),
    T(test_unknown_or_read_only_address_gets_exception_2),
    T(test_setpoint_above_3000_gets_exception_3_and_changes_nothing),
    T(test_illegal_values_get_exception_3),
    T(test_fc23_with_a_bad_read_writes_nothing),
    T(test_other_device_id_and_bad_crc_get_silence),
    T(test_broadcast_writes_without_answering),
    T(test_silence_ends_a_frame),
    T(test_an_oversized_frame_is_dropped_whole),
    T(test_bytes_arriving_while_a_frame_is_pending_do_not_corrupt_it),
    T(test_watchdog_trips_after_watchdog_ms_without_a_command),
    T(test_commands_keep_the_watchdog_fed),
    T(test_a_trip_applies_the_safe_brake_through_the_ramp),
    T(test_fault_reset_clears_the_trip_and_is_self_clearing),
    T(test_ramp_limits_the_slew_of_the_coil_current),
    T(test_slow_ramp_below_1_ma_per_ms_still_moves),
    T(test_brake_disabled_drives_no_current),
    T(test_estop_forces_the_safe_brake_and_latches_its_fault),
    T(test_after_an_estop_the_ramp_restarts_from_the_coils_real_current),
    T(test_removed_safety_key_forces_the_safe_brake),
    T(test_over_current_cuts_the_coil_at_once_and_latches),
    T(test_a_coil_that_carries_no_current_is_a_fault),
    T(test_over_temperature_caps_the_coil_with_hysteresis),
    T(test_under_voltage_is_reported_and_latched),
    T(test_coil_drive_settles_on_the_command_despite_a_resistance_error),
    T(test_coil_drive_is_off_for_a_zero_command),
#undef T
};

int main(void)
{
    for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++) {
        failures_in_test = 0;
        TESTS[i].fn();
        if (failures_in_test) {
            printf("FAIL %s\n", TESTS[i].name);
            failed++;
        } else {
            printf("ok   %s\n", TESTS[i].name);
            passed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
