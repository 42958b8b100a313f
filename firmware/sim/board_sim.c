/* board-sim: the reference firmware on a simulated ATmega328P (simavr), wired to a simulated
 * treadmill, with its UART on a pseudo-terminal so millctl (or mbpoll) can talk to it.
 *
 *   board-sim --link PATH --profile steady:V[;cadence=SPM;asym=A;cv=C;pushcv=P] [--truth-log FILE]
 *             [--start-at S] [--estop-at S[:DUR]] [--mute-at S:DUR] [--firmware ELF]
 *
 * The harness, in one thread, paced to real time: every 100 us of simulated time it moves
 * bytes between the pty and the UART, integrates the coil current from the PWM duty and
 * feeds it to the current-sense ADC, moves the belt (sim/belt.h: kinematic, or an athlete's
 * steps against the brake that coil current makes) and drives the e-stop input. Encoder edges
 * are scheduled on the cycles the belt crosses each count. The roller and encoder match millctl's
 * default machine config, so an uncalibrated controller reads true distances.
 * An athlete (stride options in the profile) steps on at --start-at with the left foot; each of
 * their steps goes to the truth log as it ends.
 * --mute-at cuts the link (bytes dropped both ways) as a pulled RS-485 cable would. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sim_avr.h>
#include <sim_elf.h>
#include <sim_io.h>
#include <sim_irq.h>
#include <sim_cycle_timers.h>
#include <sim_time.h>
#include <avr_adc.h>
#include <avr_extint.h>
#include <avr_ioport.h>
#include <avr_uart.h>

#include "belt.h"
#include "profile.h"

/* The machine (millctl's defaults: config/machine.toml). */
#define ROLLER_DIAMETER_M 0.080
#define ENCODER_COUNTS_PER_REV (1024 * 4)
/* The coil and its drive (docs/hardware.md). 5 % above the firmware's nominal 6 ohm, so the
 * firmware's integral trim has something to correct. */
#define SUPPLY_MV 24000.0
#define COIL_RESISTANCE_OHM 6.3
#define COIL_TIME_CONSTANT_S 0.030
#define SHUNT_MV_PER_MA 1.0
#define SUPPLY_DIVIDER 6.0
#define BOARD_TEMP_C 30.0
#define TEMP_SENSOR_MV(c) (500.0 + 10.0 * (c)) /* MCP9700 */

#define SERVICE_PERIOD_S 100e-6
#define TRUTH_PERIOD_S 0.010
#define ADC_PERIOD_S 0.001

/* ATmega328P data-space addresses of the Timer1 registers the harness reads. */
#define REG_TCCR1A 0x80
#define REG_ICR1L 0x86
#define REG_OCR1AL 0x88
#define COM1A1_BIT 7
#define REG_PORTD 0x2B
#define DE_BIT 4

typedef struct {
    avr_t *avr;
    int master_fd, slave_fd;
    char link[PATH_MAX];
    uint8_t in_buf[4096];
    size_t in_len, in_pos;
    bool xon;
    avr_irq_t *uart_in;
    avr_irq_t *pin_a, *pin_b, *pin_estop, *pin_key, *adc_coil, *adc_temp, *adc_supply;
    profile_t profile;
    belt_t belt;
    double metres_per_count;
    int64_t count;          /* signed counts the belt has moved */
    uint8_t ab;             /* encoder channel state, bit 1 = A */
    double coil_ma;
    double duty;
    FILE *truth;
    double estop_at_s, estop_for_s;
    double mute_at_s, mute_for_s;
    bool estop_pressed;
    struct timespec wall_start;
    double max_lag_s;
    double row_lag_s;       /* the worst lag since the last truth row */
    uint64_t de_errors;     /* bytes sent while the RS-485 driver was not enabled */
    uint64_t bytes_in, bytes_out;
    double next_truth_s, next_adc_s;
    uint32_t noise;
    uint8_t port_d_levels;  /* what the harness drives onto port D's inputs */
} harness_t;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* Drive an input of port D from outside. The firmware enables pull-ups on its inputs; simavr
 * would let a pull-up win over a raised pin unless the port's "external" level says otherwise. */
static void drive_pin(harness_t *h, avr_irq_t *pin, unsigned bit, unsigned level)
{
    static const unsigned DRIVEN = (1u << 2) | (1u << 3) | (1u << 5) | (1u << 6);
    h->port_d_levels = level ? (uint8_t)(h->port_d_levels | (1u << bit)) : (uint8_t)(h->port_d_levels & ~(1u << bit));
    avr_ioport_external_t ext = {.name = 'D', .mask = DRIVEN, .value = h->port_d_levels};
    avr_ioctl(h->avr, AVR_IOCTL_IOPORT_SET_EXTERNAL('D'), &ext);
    avr_raise_irq(pin, level);
}

static double sim_time_s(const harness_t *h)
{
    return (double)h->avr->cycle / (double)h->avr->frequency;
}

static double wall_time_s(const harness_t *h)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - h->wall_start.tv_sec) + (double)(now.tv_nsec - h->wall_start.tv_nsec) * 1e-9;
}

static bool in_window(double t, double at, double len)
{
    return at >= 0.0 && t >= at && (len < 0.0 || t < at + len);
}

/* --- UART <-> pty ---------------------------------------------------------------------- */
static void uart_out(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    harness_t *h = param;
    if (!(h->avr->data[REG_PORTD] & (1u << DE_BIT))) {
        h->de_errors++; /* on a real bus this byte would never leave the transceiver */
    }
    if (in_window(sim_time_s(h), h->mute_at_s, h->mute_for_s)) {
        return;
    }
    uint8_t byte = (uint8_t)value;
    h->bytes_out++;
    /* The pty buffers several kB; a client that stopped reading loses bytes, as on a bus. */
    if (write(h->master_fd, &byte, 1) < 0 && errno != EAGAIN && errno != EIO) {
        perror("board-sim: pty write");
    }
}

static void uart_xon(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)value;
    ((harness_t *)param)->xon = true;
}

static void uart_xoff(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)value;
    ((harness_t *)param)->xon = false;
}

static void pump_pty(harness_t *h, bool muted)
{
    if (h->in_pos == h->in_len) {
        h->in_pos = h->in_len = 0;
        ssize_t n = read(h->master_fd, h->in_buf, sizeof h->in_buf);
        if (n > 0) {
            h->in_len = muted ? 0 : (size_t)n; /* a cut cable: the request never arrives */
        }
    }
    while (h->xon && h->in_pos < h->in_len) {
        h->bytes_in++;
        avr_raise_irq(h->uart_in, h->in_buf[h->in_pos++]);
    }
}

/* --- encoder --------------------------------------------------------------------------- */
/* The cycle at which the belt, as it moves now, reaches its next count; or, standing, the next
 * look (the belt moves only at service ticks, which the athlete's push changes). */
static avr_cycle_count_t next_edge_cycle(const harness_t *h)
{
    avr_cycle_count_t now = h->avr->cycle;
    double v = fabs(belt_speed_mps(&h->belt));
    if (v <= 0.0) {
        return now + avr_usec_to_cycles(h->avr, (uint32_t)(SERVICE_PERIOD_S * 1e6));
    }
    double x_now = fabs(belt_position_m(&h->belt)) + v * (sim_time_s(h) - h->belt.t_s);
    double to_go_m = (double)(llabs(h->count) + 1) * h->metres_per_count - x_now;
    double cycles = ceil(fmax(0.0, to_go_m) / v * (double)h->avr->frequency);
    /* The speed changes at every service tick: look again by then at the latest (a belt just
     * starting would otherwise wait for the edge its first crawl predicts, hours away). */
    double tick = (double)avr_usec_to_cycles(h->avr, (uint32_t)(SERVICE_PERIOD_S * 1e6));
    return now + (avr_cycle_count_t)fmax(1.0, fmin(cycles, tick));
}

static avr_cycle_count_t encoder_edge(avr_t *avr, avr_cycle_count_t when, void *param)
{
    (void)when;
    (void)avr;
    harness_t *h = param;
    double v = fabs(belt_speed_mps(&h->belt));
    double x_now = fabs(belt_position_m(&h->belt)) + v * (sim_time_s(h) - h->belt.t_s);
    /* One edge per call, each on its own cycle: the firmware's interrupts see every transition.
     * (The speed may have changed since this call was scheduled: then it only looks again.) */
    if (x_now >= (double)(llabs(h->count) + 1) * h->metres_per_count * (1.0 - 1e-12)) {
        static const uint8_t FORWARD[4] = {0, 2, 3, 1}; /* 00 -> 10 -> 11 -> 01: A leads B */
        h->count += h->belt.direction > 0.0 ? 1 : -1;
        uint8_t ab = FORWARD[(uint64_t)h->count & 3u];
        if ((ab ^ h->ab) & 2u) {
            drive_pin(h, h->pin_a, 2, (ab >> 1) & 1u);
        }
        if ((ab ^ h->ab) & 1u) {
            drive_pin(h, h->pin_b, 3, ab & 1u);
        }
        h->ab = ab;
    }
    return next_edge_cycle(h);
}

/* One line per step of the athlete, as it ends. */
static void write_step(harness_t *h, const step_truth_t *s)
{
    if (!h->truth) {
        return;
    }
    fprintf(h->truth,
            "{\"step\": %u, \"side\": \"%s\", \"forward\": %s, \"t_s\": %.6f, \"duration_s\": %.6f, "
            "\"impulse_ns\": %.4f, \"length_m\": %.6f, \"speed_start_mps\": %.5f, \"speed_end_mps\": %.5f, "
            "\"steady\": %s}\n",
            s->index, s->left ? "left" : "right", s->forward ? "true" : "false", s->t_s, s->duration_s,
            s->impulse_ns, s->length_m, s->speed_start_mps, s->speed_end_mps, s->steady ? "true" : "false");
}

/* A figure, or null when there is none (JSON has no NaN). */
static void json_number(FILE *f, const char *key, double value, const char *tail)
{
    if (isfinite(value)) {
        fprintf(f, "\"%s\": %.3f%s", key, value, tail);
    } else {
        fprintf(f, "\"%s\": null%s", key, tail);
    }
}

/* The athlete's whole run: the figures over its steps at an even pace (the session rule). */
static void write_stride_summary(harness_t *h, FILE *f)
{
    const stride_sums_t *s = &h->belt.sums;
    fprintf(f, "{\"stride\": {\"forward\": %s, \"steps\": %u, \"steady_steps\": %u, ",
            h->belt.direction > 0.0 ? "true" : "false", h->belt.all_steps, s->steps);
    json_number(f, "cadence_spm", stride_cadence_spm(s), ", ");
    json_number(f, "balance_left_pct", stride_balance_left_pct(s), ", ");
    json_number(f, "step_length_m", stride_length_m(s), "}}\n");
}

/* --- the rest of the machine, every 100 us ------------------------------------------- */
static double pwm_duty(const harness_t *h)
{
    const uint8_t *d = h->avr->data;
    if (!(d[REG_TCCR1A] & (1u << COM1A1_BIT))) {
        return 0.0;
    }
    unsigned top = d[REG_ICR1L] | (d[REG_ICR1L + 1] << 8);
    unsigned ocr = d[REG_OCR1AL] | (d[REG_OCR1AL + 1] << 8);
    if (top == 0) {
        return 0.0;
    }
    return ocr >= top ? 1.0 : (double)ocr / (double)top;
}

static double noise_ma(harness_t *h)
{
    h->noise = h->noise * 1664525u + 1013904223u; /* a fixed LCG: runs are repeatable */
    return ((double)(h->noise >> 16) / 65535.0 - 0.5) * 6.0; /* +-3 mA */
}

static void write_truth(harness_t *h, double t)
{
    if (!h->truth) {
        return;
    }
    fprintf(h->truth,
            "{\"t_s\": %.4f, \"count\": %lld, \"distance_m\": %.6f, \"speed_mps\": %.4f, \"push_n\": %.2f, "
            "\"duty\": %.4f, \"coil_ma\": %.1f, \"estop\": %s, \"muted\": %s, \"lag_ms\": %.2f, "
            "\"row_lag_ms\": %.2f, \"de_errors\": %llu, \"bytes_in\": %llu, \"bytes_out\": %llu}\n",
            t, (long long)h->count, fabs(belt_position_m(&h->belt)), belt_speed_mps(&h->belt), h->belt.push_n,
            h->duty, h->coil_ma, h->estop_pressed ? "true" : "false",
            in_window(t, h->mute_at_s, h->mute_for_s) ? "true" : "false", h->max_lag_s * 1000.0,
            h->row_lag_s * 1000.0, (unsigned long long)h->de_errors, (unsigned long long)h->bytes_in, (unsigned long long)h->bytes_out);
    fflush(h->truth);
    h->row_lag_s = 0.0;
}

static avr_cycle_count_t service(avr_t *avr, avr_cycle_count_t when, void *param)
{
    harness_t *h = param;
    double t = sim_time_s(h);
    double ahead = t - wall_time_s(h);
    if (ahead > 200e-6) {
        struct timespec pause = {0, (long)(ahead * 1e9)};
        nanosleep(&pause, NULL);
    } else {
        h->max_lag_s = fmax(h->max_lag_s, -ahead);
        h->row_lag_s = fmax(h->row_lag_s, -ahead);
    }
    pump_pty(h, in_window(t, h->mute_at_s, h->mute_for_s));

    bool pressed = in_window(t, h->estop_at_s, h->estop_for_s);
    if (pressed != h->estop_pressed) {
        h->estop_pressed = pressed;
        drive_pin(h, h->pin_estop, 5, pressed ? 1 : 0); /* NC contact opens: the input pulls high */
    }
    /* The independent e-stop loop cuts the coil's supply, whatever the firmware drives. */
    h->duty = pwm_duty(h);
    double settled_ma = h->estop_pressed ? 0.0 : h->duty * SUPPLY_MV / COIL_RESISTANCE_OHM;
    h->coil_ma += (settled_ma - h->coil_ma) * (SERVICE_PERIOD_S / COIL_TIME_CONSTANT_S);
    step_truth_t step;
    if (belt_advance(&h->belt, t - h->belt.t_s, h->coil_ma, &step) > 0) {
        write_step(h, &step);
    }
    if (t >= h->next_adc_s) {
        h->next_adc_s += ADC_PERIOD_S;
        double measured = fmax(0.0, h->coil_ma + noise_ma(h));
        avr_raise_irq(h->adc_coil, (uint32_t)lround(measured * SHUNT_MV_PER_MA));
    }
    if (t >= h->next_truth_s) {
        h->next_truth_s += TRUTH_PERIOD_S;
        write_truth(h, t);
    }
    if (stop_requested) {
        avr->state = cpu_Done;
    }
    return when + avr_usec_to_cycles(avr, (uint32_t)(SERVICE_PERIOD_S * 1e6));
}

static void no_sleep(avr_t *avr, avr_cycle_count_t how_long)
{
    (void)avr;
    (void)how_long; /* the service timer paces the simulation to real time */
}

/* --- setup ------------------------------------------------------------------------------ */
static int open_pty(harness_t *h)
{
    h->master_fd = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK);
    if (h->master_fd < 0 || grantpt(h->master_fd) || unlockpt(h->master_fd)) {
        perror("board-sim: cannot create a pseudo-terminal");
        return -1;
    }
    const char *slave = ptsname(h->master_fd);
    /* Hold the slave open ourselves: the link stays up while clients come and go. */
    h->slave_fd = open(slave, O_RDWR | O_NOCTTY);
    struct termios tio;
    if (h->slave_fd < 0 || tcgetattr(h->slave_fd, &tio)) {
        perror("board-sim: cannot open the pty slave");
        return -1;
    }
    cfmakeraw(&tio);
    cfsetispeed(&tio, B115200);
    cfsetospeed(&tio, B115200);
    tcsetattr(h->slave_fd, TCSANOW, &tio);
    unlink(h->link);
    if (symlink(slave, h->link)) {
        fprintf(stderr, "board-sim: cannot link %s -> %s: %s\n", h->link, slave, strerror(errno));
        return -1;
    }
    printf("board-sim: serving on %s (%s)\n", h->link, slave);
    fflush(stdout);
    return 0;
}

static bool parse_window(const char *text, double *at, double *len)
{
    char *end;
    *at = strtod(text, &end);
    *len = -1.0;
    if (end == text || *at < 0.0) {
        return false;
    }
    if (*end == ':') {
        const char *rest = end + 1;
        *len = strtod(rest, &end);
        if (end == rest || *len <= 0.0) {
            return false;
        }
    }
    return *end == '\0';
}

static void usage(void)
{
    fprintf(stderr, "usage: board-sim --link PATH --profile steady:V[;cadence=SPM;asym=A;cv=C;pushcv=P] "
                    "[--truth-log FILE] [--start-at S] [--estop-at S[:DUR]] [--mute-at S:DUR] [--firmware ELF]\n");
}

int main(int argc, char **argv)
{
    static harness_t h;
    h.estop_at_s = h.mute_at_s = -1.0;
    h.metres_per_count = M_PI * ROLLER_DIAMETER_M / ENCODER_COUNTS_PER_REV;
    h.noise = 12345u;
    const char *truth_path = NULL, *profile_text = NULL;
    double start_at_s = 0.0;
    char firmware[PATH_MAX];
    char self[PATH_MAX];
    ssize_t self_len = readlink("/proc/self/exe", self, sizeof self - 1);
    self[self_len > 0 ? self_len : 0] = '\0';
    snprintf(firmware, sizeof firmware, "%s/firmware.elf", dirname(self));

    static const struct option options[] = {
        {"link", required_argument, NULL, 'l'},       {"profile", required_argument, NULL, 'p'},
        {"truth-log", required_argument, NULL, 't'},  {"estop-at", required_argument, NULL, 'e'},
        {"mute-at", required_argument, NULL, 'm'},    {"firmware", required_argument, NULL, 'f'},
        {"start-at", required_argument, NULL, 's'},   {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'l': snprintf(h.link, sizeof h.link, "%s", optarg); break;
        case 'p': profile_text = optarg; break;
        case 't': truth_path = optarg; break;
        case 'f': snprintf(firmware, sizeof firmware, "%s", optarg); break;
        case 's': {
            double unused;
            if (!parse_window(optarg, &start_at_s, &unused) || unused >= 0.0 || !isfinite(start_at_s)) {
                fprintf(stderr, "board-sim: --start-at %s: expected seconds\n", optarg);
                return 2;
            }
            break;
        }
        case 'e':
            if (!parse_window(optarg, &h.estop_at_s, &h.estop_for_s)) {
                fprintf(stderr, "board-sim: --estop-at %s: expected seconds, or seconds:duration\n", optarg);
                return 2;
            }
            break;
        case 'm':
            if (!parse_window(optarg, &h.mute_at_s, &h.mute_for_s) || h.mute_for_s < 0.0) {
                fprintf(stderr, "board-sim: --mute-at %s: expected seconds:duration\n", optarg);
                return 2;
            }
            break;
        default: usage(); return opt == 'h' ? 0 : 2;
        }
    }
    if (!h.link[0] || !profile_text) {
        usage();
        return 2;
    }
    char error[200];
    if (!profile_parse(profile_text, &h.profile, error, sizeof error)) {
        fprintf(stderr, "board-sim: %s\n", error);
        return 2;
    }
    if (start_at_s > 0.0 && !h.profile.athlete) {
        fprintf(stderr, "board-sim: --start-at needs an athlete: give stride options in the profile "
                        "(steady:V;cadence=SPM...)\n");
        return 2;
    }
    belt_init(&h.belt, &h.profile, start_at_s, 0x5eed5eedu);
    if (truth_path && !(h.truth = fopen(truth_path, "w"))) {
        fprintf(stderr, "board-sim: cannot write the truth log %s: %s\n", truth_path, strerror(errno));
        return 2;
    }

    elf_firmware_t fw;
    memset(&fw, 0, sizeof fw);
    if (access(firmware, R_OK) || elf_read_firmware(firmware, &fw)) {
        fprintf(stderr, "board-sim: cannot load the firmware %s (build it with make -C firmware sim)\n", firmware);
        return 2;
    }
    h.avr = avr_make_mcu_by_name(fw.mmcu);
    if (!h.avr) {
        fprintf(stderr, "board-sim: simavr does not know the chip '%s' named in %s\n", fw.mmcu, firmware);
        return 2;
    }
    avr_init(h.avr);
    avr_load_firmware(h.avr, &fw);
    h.avr->sleep = no_sleep;
    h.avr->log = 1;
    /* simavr 1.6 keeps raising INT0/INT1 while their pin is held low, as in the "low level"
     * sense mode of reset, even after the firmware chose "any edge": a standing belt (both
     * encoder channels low) then traps the firmware in its encoder interrupt and it never
     * answers. The chip does no such thing; switch the emulation off. */
    avr_extint_set_strict_lvl_trig(h.avr, 0 /* INT0 */, 0);
    avr_extint_set_strict_lvl_trig(h.avr, 1 /* INT1 */, 0);

    uint32_t flags = 0;
    avr_ioctl(h.avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
    flags &= ~(uint32_t)(AVR_UART_FLAG_STDIO | AVR_UART_FLAG_POLL_SLEEP);
    avr_ioctl(h.avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
    h.uart_in = avr_io_getirq(h.avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
    avr_irq_register_notify(avr_io_getirq(h.avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), uart_out, &h);
    avr_irq_register_notify(avr_io_getirq(h.avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON), uart_xon, &h);
    avr_irq_register_notify(avr_io_getirq(h.avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF), uart_xoff, &h);
    h.xon = true;

    h.pin_a = avr_io_getirq(h.avr, AVR_IOCTL_IOPORT_GETIRQ('D'), 2);
    h.pin_b = avr_io_getirq(h.avr, AVR_IOCTL_IOPORT_GETIRQ('D'), 3);
    h.pin_estop = avr_io_getirq(h.avr, AVR_IOCTL_IOPORT_GETIRQ('D'), 5);
    h.pin_key = avr_io_getirq(h.avr, AVR_IOCTL_IOPORT_GETIRQ('D'), 6);
    drive_pin(&h, h.pin_a, 2, 0);
    drive_pin(&h, h.pin_b, 3, 0);
    drive_pin(&h, h.pin_estop, 5, 0); /* e-stop loop closed */
    drive_pin(&h, h.pin_key, 6, 0);   /* safety key in */
    h.adc_coil = avr_io_getirq(h.avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_ADC0);
    h.adc_temp = avr_io_getirq(h.avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_ADC1);
    h.adc_supply = avr_io_getirq(h.avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_ADC2);
    avr_raise_irq(h.adc_coil, 0);
    avr_raise_irq(h.adc_temp, (uint32_t)lround(TEMP_SENSOR_MV(BOARD_TEMP_C)));
    avr_raise_irq(h.adc_supply, (uint32_t)lround(SUPPLY_MV / SUPPLY_DIVIDER));

    if (open_pty(&h)) {
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    clock_gettime(CLOCK_MONOTONIC, &h.wall_start);
    avr_cycle_timer_register(h.avr, avr_usec_to_cycles(h.avr, (uint32_t)(SERVICE_PERIOD_S * 1e6)), service, &h);
    if (h.profile.speed_mps != 0.0) {
        avr_cycle_timer_register(h.avr, next_edge_cycle(&h), encoder_edge, &h);
    }
    int state = cpu_Running;
    while (state != cpu_Done && state != cpu_Crashed) {
        state = avr_run(h.avr);
    }
    write_truth(&h, sim_time_s(&h));
    if (h.profile.athlete) {
        if (h.truth) {
            write_stride_summary(&h, h.truth);
        }
        fprintf(stderr, "board-sim: athlete: ");
        write_stride_summary(&h, stderr);
    }
    unlink(h.link);
    if (state == cpu_Crashed) {
        fprintf(stderr, "board-sim: the firmware crashed at %.3f s (pc 0x%04x)\n", sim_time_s(&h), h.avr->pc);
        return 1;
    }
    fprintf(stderr, "board-sim: stopped at %.3f s; max lag behind real time %.1f ms; %llu bytes in, %llu out\n",
            sim_time_s(&h), h.max_lag_s * 1000.0, (unsigned long long)h.bytes_in, (unsigned long long)h.bytes_out);
    return 0;
}
