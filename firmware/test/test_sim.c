/* Native unit tests of the simulated board's runner profile and belt (sim/profile.c,
 * sim/belt.c): the athlete the controller is graded against. Each test is one behaviour; the
 * run ends with "sim: N passed, N failed" and exits non-zero on any failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../sim/belt.h"
#include "../sim/profile.h"

static int failures_in_test;
static int passed, failed;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            printf("  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);           \
            failures_in_test++;                                                         \
        }                                                                               \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                           \
    do {                                                                                \
        double a_ = (a), b_ = (b);                                                      \
        if (!(fabs(a_ - b_) <= (tol))) {                                                \
            printf("  %s:%d: %s == %.6g, expected %.6g +- %g\n", __FILE__, __LINE__, #a, a_, b_, \
                   (double)(tol));                                                      \
            failures_in_test++;                                                         \
        }                                                                               \
    } while (0)

#define TICK_S 1e-4 /* the harness's service period */
#define LEVEL3_MA 720.0

static char error[300];

static bool parse(const char *text, profile_t *p)
{
    error[0] = '\0';
    return profile_parse(text, p, error, sizeof error);
}

/* The profile is refused and the message holds `needle`; the output is untouched. */
static void check_refused(const char *text, const char *needle)
{
    profile_t p = {.speed_mps = 99.0};
    bool ok = parse(text, &p);
    if (ok || !strstr(error, needle) || p.speed_mps != 99.0) {
        printf("  profile '%s': accepted=%d, error '%s' (expected '%s')\n", text, ok, error, needle);
        failures_in_test++;
    }
}

/* --- profile ------------------------------------------------------------------------------ */
static void test_a_plain_steady_profile_is_a_kinematic_belt(void)
{
    profile_t p;
    CHECK(parse("steady:3.0", &p));
    CHECK(p.speed_mps == 3.0 && !p.athlete);
    CHECK(parse("steady:-1.5", &p));
    CHECK(p.speed_mps == -1.5 && !p.athlete);
    CHECK(parse("steady:0", &p));
    CHECK(p.speed_mps == 0.0);
}

static void test_stride_options_set_an_athlete(void)
{
    profile_t p;
    CHECK(parse("steady:3.0;cadence=176;asym=0.08", &p));
    CHECK(p.athlete && p.speed_mps == 3.0 && p.cadence_spm == 176.0 && p.asym == 0.08);
    CHECK(p.step_cv == PROFILE_DEFAULT_STEP_CV && p.push_cv == 0.0);
    CHECK(parse("steady:-2.0;asym=-0.15;cv=0;pushcv=0.05", &p));
    CHECK(p.athlete && p.speed_mps == -2.0 && p.asym == -0.15 && p.step_cv == 0.0 && p.push_cv == 0.05);
    CHECK(p.cadence_spm == PROFILE_DEFAULT_CADENCE_SPM);
    CHECK(parse("steady:1.2;cadence=40", &p) && parse("steady:1.2;cadence=240", &p));
    CHECK(parse("steady:1.2;asym=0.5", &p) && parse("steady:1.2;asym=-0.5", &p));
}

static void test_bad_profiles_are_refused_with_what_is_wrong(void)
{
    check_refused("ramp:3.0", "unknown profile");
    check_refused("steady:", "not a number");
    check_refused("steady:fast", "not a number");
    check_refused("steady:3.0x", "not a number");
    check_refused("steady:nan", "not a number");
    check_refused("steady:inf;cadence=170", "not a number");
    check_refused("steady:13", "above 12");
    check_refused("steady:3.0;stride=1.2", "unknown stride option 'stride=1.2'");
    check_refused("steady:3.0;cadence", "unknown stride option 'cadence'");
    check_refused("steady:3.0;Cadence=170", "unknown stride option");
    check_refused("steady:3.0;cadence=fast", "cadence=fast is not a number");
    check_refused("steady:3.0;cadence=", "is not a number");
    check_refused("steady:3.0;cadence=17O", "is not a number");
    check_refused("steady:3.0;asym=nan", "asym=nan is not a number");
    check_refused("steady:3.0;cadence=1e999", "is not a number");
    check_refused("steady:3.0;cadence=300", "cadence must be within 40..240, got 300");
    check_refused("steady:3.0;cadence=39.9", "cadence must be within 40..240");
    check_refused("steady:3.0;asym=0.6", "asym must be within -0.5..0.5");
    check_refused("steady:3.0;cv=-0.01", "cv must be within 0..0.2");
    check_refused("steady:3.0;pushcv=0.31", "pushcv must be within 0..0.3");
    check_refused("steady:3.0;asym=0.1;asym=0.1", "asym given twice");
    check_refused("steady:3.0;", "empty option");
    check_refused("steady:3.0;;asym=0.1", "empty option");
    check_refused("steady:0;cadence=170", "needs a speed");
    /* Huge input: the message is cut to the buffer, never overrun (ASan watches). */
    char huge[5000];
    memset(huge, 'x', sizeof huge);
    memcpy(huge, "steady:3.0;", 11);
    huge[sizeof huge - 1] = '\0';
    check_refused(huge, "unknown stride option");
    char value[200] = "steady:3.0;cadence=";
    memset(value + strlen(value), '1', 150);
    value[199] = '\0';
    check_refused(value, "is not a number");
}

/* --- belt ---------------------------------------------------------------------------------- */
static belt_t run_belt(const char *text, double start_s, double seconds, double coil_ma, step_truth_t *steps,
                       unsigned max_steps, unsigned *n_steps, double *resist_ns)
{
    profile_t p;
    CHECK(parse(text, &p));
    belt_t b;
    belt_init(&b, &p, start_s, 42u);
    *n_steps = 0;
    double resist = 0.0;
    for (long i = 0; i < lround(seconds / TICK_S); i++) {
        step_truth_t s;
        double v = fabs(belt_speed_mps(&b));
        resist += (brake_force_n(coil_ma, v) + friction_n(v)) * TICK_S;
        if (belt_advance(&b, TICK_S, coil_ma, &s) && *n_steps < max_steps) {
            steps[(*n_steps)++] = s;
            if (resist_ns) {
                resist_ns[*n_steps - 1] = resist; /* the resistance's impulse up to this strike */
            }
        }
    }
    return b;
}

static void test_the_brake_and_friction_are_the_nominal_machines(void)
{
    CHECK_NEAR(brake_force_n(3000.0, 1.5), 600.0, 1e-9);
    CHECK_NEAR(brake_force_n(720.0, 3.0), 600.0 * 0.24 * 0.24 * 0.8, 1e-9);
    CHECK_NEAR(brake_force_n(-5.0, 3.0), 0.0, 1e-12);
    CHECK_NEAR(friction_n(3.0), 27.0, 1e-9);
    CHECK_NEAR(friction_n(-3.0), 27.0, 1e-9);
    CHECK(friction_n(0.0) == 0.0);
}

static void test_a_kinematic_belt_runs_at_its_speed_with_no_steps(void)
{
    step_truth_t steps[4];
    unsigned n;
    belt_t b = run_belt("steady:-2.5", 0.0, 2.0, LEVEL3_MA, steps, 4, &n, NULL);
    CHECK(n == 0);
    CHECK_NEAR(belt_speed_mps(&b), -2.5, 1e-12);
    CHECK_NEAR(belt_position_m(&b), -5.0, 1e-6);
}

static step_truth_t steps_buf[400];
static double resist_buf[400];

static void test_the_athlete_starts_from_standstill_with_the_left_foot_and_holds_the_speed(void)
{
    unsigned n;
    belt_t b = run_belt("steady:3.0;cadence=168;asym=0.10", 2.0, 30.0, LEVEL3_MA, steps_buf, 400, &n, resist_buf);
    CHECK(n > 70);
    CHECK_NEAR(steps_buf[0].t_s, 2.0, 1e-9);
    CHECK(steps_buf[0].left && !steps_buf[1].left && steps_buf[2].left && steps_buf[0].index == 0);
    CHECK(steps_buf[0].speed_start_mps == 0.0 && !steps_buf[0].steady);
    CHECK(steps_buf[n - 1].forward);
    /* at speed within a few seconds, and held: the last 10 s average within 2 % of the profile */
    double travelled = 0.0, time = 0.0;
    for (unsigned i = 0; i < n; i++) {
        if (steps_buf[i].t_s >= 20.0) {
            travelled += steps_buf[i].length_m;
            time += steps_buf[i].duration_s;
        }
    }
    CHECK_NEAR(travelled / time, 3.0, 0.06);
    /* at pace within 2.5 s of the start (3 m/s at ATHLETE_START_MPS2), every step at an even pace after */
    for (unsigned i = 0; i < n; i++) {
        if (steps_buf[i].t_s > 2.0 + 2.5) {
            CHECK(steps_buf[i].steady);
        }
    }
    /* the truth's figures: the cadence asked, and the asymmetry's share of the push */
    CHECK_NEAR(stride_cadence_spm(&b.sums), 168.0, 168.0 * 0.005);
    CHECK_NEAR(stride_balance_left_pct(&b.sums), 55.0, 1.0);
    CHECK_NEAR(stride_length_m(&b.sums), 3.0 * 60.0 / 168.0, 0.05);
}

static void test_each_steps_impulse_is_the_belts_momentum_change_plus_what_brake_and_friction_took(void)
{
    /* What millctl estimates (m dv + integral of brake and friction) is this truth. */
    unsigned n;
    run_belt("steady:3.5;cadence=180;asym=-0.15;pushcv=0.05", 0.5, 12.0, 1650.0, steps_buf, 400, &n, resist_buf);
    CHECK(n > 30);
    for (unsigned i = 1; i < n; i++) {
        const step_truth_t *s = &steps_buf[i];
        double momentum = BELT_MASS_KG * (s->speed_end_mps - s->speed_start_mps);
        double resisted = resist_buf[i] - resist_buf[i - 1];
        CHECK_NEAR(s->impulse_ns, momentum + resisted, 0.01 * s->impulse_ns);
        CHECK_NEAR(s->duration_s, 60.0 / 180.0, 60.0 / 180.0 * 3 * PROFILE_DEFAULT_STEP_CV + 1e-9);
    }
}

static void test_a_backward_athlete_moves_the_belt_backwards(void)
{
    unsigned n;
    belt_t b = run_belt("steady:-2.0;cadence=190;asym=0.05;cv=0", 0.0, 10.0, LEVEL3_MA, steps_buf, 400, &n, NULL);
    CHECK(n > 25);
    CHECK(!steps_buf[n - 1].forward);
    CHECK(belt_position_m(&b) < -10.0);
    CHECK_NEAR(belt_speed_mps(&b), -2.0, 0.2);
    CHECK_NEAR(steps_buf[n - 1].duration_s, 60.0 / 190.0, 1e-6); /* cv=0: every step the same */
    /* Over whole strides (an odd count of steps would weigh one side one step more). */
    double left = 0.0, all = 0.0;
    for (unsigned i = n - 20; i < n; i++) {
        all += steps_buf[i].impulse_ns;
        left += steps_buf[i].left ? steps_buf[i].impulse_ns : 0.0;
    }
    CHECK_NEAR(100.0 * left / all, 52.5, 0.5);
}

static void test_the_belt_swings_once_a_step_slowing_fastest_at_the_foot_strike(void)
{
    profile_t p;
    CHECK(parse("steady:3.0;cadence=170;cv=0", &p));
    belt_t b;
    belt_init(&b, &p, 0.0, 7u);
    step_truth_t s;
    for (long i = 0; i < lround(10.0 / TICK_S); i++) {
        belt_advance(&b, TICK_S, LEVEL3_MA, &s);
    }
    /* over the next step: the speed's extremes, and where it falls fastest */
    double lo = 1e9, hi = 0.0, steepest = 0.0, steepest_phase = -1.0, v_prev = fabs(belt_speed_mps(&b));
    double t0 = b.step_t_s + b.step_len_s, len = b.step_len_s;
    while (b.t_s < t0) {
        belt_advance(&b, TICK_S, LEVEL3_MA, &s);
    }
    while (b.t_s < t0 + len - TICK_S) {
        belt_advance(&b, TICK_S, LEVEL3_MA, &s);
        double v = fabs(belt_speed_mps(&b));
        lo = fmin(lo, v);
        hi = fmax(hi, v);
        if (v_prev - v > steepest) {
            steepest = v_prev - v;
            steepest_phase = (b.t_s - t0) / len;
        }
        v_prev = v;
    }
    /* a swing the controller can follow (it needs >= 1.5 mm/s), a few per cent of the speed */
    CHECK(hi - lo > 0.01 && hi - lo < 0.15);
    CHECK(steepest_phase < 0.05 || steepest_phase > 0.95);
}

static void test_the_same_seed_repeats_the_run(void)
{
    unsigned n1, n2;
    static step_truth_t other[400];
    run_belt("steady:3.0;cadence=176;cv=0.1;pushcv=0.1", 0.0, 5.0, LEVEL3_MA, steps_buf, 400, &n1, NULL);
    run_belt("steady:3.0;cadence=176;cv=0.1;pushcv=0.1", 0.0, 5.0, LEVEL3_MA, other, 400, &n2, NULL);
    CHECK(n1 == n2 && n1 > 5);
    CHECK(memcmp(steps_buf, other, n1 * sizeof other[0]) == 0);
}

/* ------------------------------------------------------------------------------------------ */
static const struct {
    const char *name;
    void (*fn)(void);
} TESTS[] = {
#define T(f) {#f, f}
    T(test_a_plain_steady_profile_is_a_kinematic_belt),
    T(test_stride_options_set_an_athlete),
    T(test_bad_profiles_are_refused_with_what_is_wrong),
    T(test_the_brake_and_friction_are_the_nominal_machines),
    T(test_a_kinematic_belt_runs_at_its_speed_with_no_steps),
    T(test_the_athlete_starts_from_standstill_with_the_left_foot_and_holds_the_speed),
    T(test_each_steps_impulse_is_the_belts_momentum_change_plus_what_brake_and_friction_took),
    T(test_a_backward_athlete_moves_the_belt_backwards),
    T(test_the_belt_swings_once_a_step_slowing_fastest_at_the_foot_strike),
    T(test_the_same_seed_repeats_the_run),
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
    printf("sim: %d passed, %d failed\n", passed, failed);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
