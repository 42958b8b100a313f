#include "belt.h"

#include <math.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

double brake_force_n(double coil_ma, double speed_mps)
{
    double i = fmax(0.0, coil_ma) / BRAKE_CURRENT_MAX_MA;
    double x = fabs(speed_mps) / BRAKE_CRITICAL_SPEED_MPS;
    return BRAKE_FORCE_MAX_N * i * i * 2.0 * x / (1.0 + x * x); /* an eddy brake: peaks at v_c */
}

double friction_n(double speed_mps)
{
    return speed_mps == 0.0 ? 0.0 : FRICTION_COULOMB_N + FRICTION_VISCOUS_N_PER_MPS * fabs(speed_mps);
}

/* xorshift64*: a fixed generator, so a seed repeats a run exactly. */
static double uniform(belt_t *b)
{
    b->rng ^= b->rng >> 12;
    b->rng ^= b->rng << 25;
    b->rng ^= b->rng >> 27;
    return (double)((b->rng * 2685821657736338717ull) >> 11) * 0x1.0p-53;
}

/* A standard normal deviate, clipped at 3 sigma: with cv <= 0.2 a step lasts 0.4-1.6x the nominal. */
static double gauss(belt_t *b)
{
    double u = fmax(uniform(b), 1e-12), w = uniform(b);
    double z = sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * w);
    return fmax(-3.0, fmin(3.0, z));
}

void belt_init(belt_t *b, const profile_t *p, double start_s, uint64_t seed)
{
    *b = (belt_t){.profile = *p, .direction = p->speed_mps < 0.0 ? -1.0 : 1.0, .target_mps = fabs(p->speed_mps),
                  .start_s = p->athlete ? start_s : 0.0, .rng = seed ? seed : 1u};
    if (!p->athlete) {
        b->v_mps = b->target_mps; /* a kinematic belt: at speed from the start, no stride */
    }
}

double belt_position_m(const belt_t *b)
{
    return b->direction * b->x_m;
}

double belt_speed_mps(const belt_t *b)
{
    return b->direction * b->v_mps;
}

/* A foot strike at b->t_s: the next step's duration and mean push, from the brake the athlete
 * feels now (coil_ma) and the pace they are at. Starting, they push to bring the belt up to the
 * profile's speed at ATHLETE_START_MPS2, strike by strike; once there, they hold it: the push that
 * balances the brake and friction at that speed, corrected over ATHLETE_SPEED_TAU_S for the
 * pace of their last stride (a stride, not a step: their own asymmetry is not corrected). */
static void open_step(belt_t *b, double coil_ma)
{
    const profile_t *p = &b->profile;
    b->step_len_s = 60.0 / p->cadence_spm * (1.0 + p->step_cv * gauss(b));
    /* Starting: the speed they aim to reach by the next strike, building up at a runner's pace. */
    double goal_mps = fmin(b->target_mps, ATHLETE_START_MPS2 * (b->t_s + b->step_len_s - b->start_s));
    double hold_n = brake_force_n(coil_ma, goal_mps) + friction_n(goal_mps);
    double correction_n = 0.0;
    if (!b->at_pace && goal_mps >= b->target_mps && b->v_mps >= ATHLETE_AT_PACE * b->target_mps) {
        b->at_pace = true;
        b->pace_index = b->index;
    }
    if (!b->at_pace) {
        correction_n = BELT_MASS_KG * (goal_mps - b->v_mps) / b->step_len_s;
    } else if (b->index >= b->pace_index + 2) {
        double stride_mps = (b->x_m - b->strike_x_m[1]) / (b->t_s - b->strike_t_s[1]);
        correction_n = BELT_MASS_KG * (b->target_mps - stride_mps) / ATHLETE_SPEED_TAU_S;
    }
    double mean_n = fmax(0.0, fmin(ATHLETE_MAX_PUSH_N, hold_n + correction_n));
    double side = (b->index % 2 == 0) ? 1.0 + p->asym : 1.0 - p->asym; /* even steps are left */
    b->step_mean_n = mean_n * side * fmax(0.0, 1.0 + p->push_cv * gauss(b));
    b->step_t_s = b->t_s;
    b->step_impulse_ns = 0.0;
    b->step_x_m = b->x_m;
    b->step_v_mps = b->v_mps;
}

/* The strike that ends the step under way: its truth, then the next step. */
static void close_step(belt_t *b, double coil_ma, step_truth_t *out)
{
    double mean = 0.5 * (b->step_v_mps + b->v_mps);
    step_truth_t s = {
        .index = b->index, .left = b->index % 2 == 0, .forward = b->direction > 0.0, .t_s = b->step_t_s,
        .duration_s = b->t_s - b->step_t_s, .impulse_ns = b->step_impulse_ns, .length_m = b->x_m - b->step_x_m,
        .speed_start_mps = b->step_v_mps, .speed_end_mps = b->v_mps,
        .steady = fabs(b->v_mps - b->step_v_mps) <= STEADY_FRACTION * mean && mean > 0.0,
    };
    *out = s;
    b->all_steps++;
    if (s.steady) {
        b->sums.steps++;
        b->sums.time_s += s.duration_s;
        b->sums.impulse_ns += s.impulse_ns;
        b->sums.left_impulse_ns += s.left ? s.impulse_ns : 0.0;
        b->sums.length_m += s.length_m;
    }
    b->strike_t_s[1] = b->strike_t_s[0];
    b->strike_x_m[1] = b->strike_x_m[0];
    b->strike_t_s[0] = b->t_s;
    b->strike_x_m[0] = b->x_m;
    b->index++;
    open_step(b, coil_ma);
}

/* Integrate the belt over dt (no foot strike inside it): the push at the interval's middle
 * (it is smooth; the strikes fall on interval ends), the resistance at its start. */
static void integrate(belt_t *b, double dt, double coil_ma)
{
    double push = 0.0;
    if (b->running) {
        double phase = (b->t_s + 0.5 * dt - b->step_t_s) / b->step_len_s;
        push = b->step_mean_n * (1.0 - cos(2.0 * M_PI * phase));
    }
    b->push_n = push;
    double v = b->v_mps;
    if (b->profile.athlete) {
        double resist = brake_force_n(coil_ma, v) + friction_n(v);
        if (v == 0.0 && push <= FRICTION_COULOMB_N) {
            resist = push; /* static friction holds a standing belt */
        }
        /* The brake and friction only slow the belt: they never run it backwards. */
        b->v_mps = fmax(0.0, v + (push - resist) / BELT_MASS_KG * dt);
        b->step_impulse_ns += push * dt;
    }
    b->x_m += 0.5 * (v + b->v_mps) * dt;
    b->t_s += dt;
}

int belt_advance(belt_t *b, double dt_s, double coil_ma, step_truth_t *closed)
{
    int steps = 0;
    double end_s = b->t_s + dt_s;
    if (b->profile.athlete && !b->running && end_s >= b->start_s) {
        integrate(b, fmax(0.0, b->start_s - b->t_s), coil_ma);
        b->t_s = b->start_s;
        b->running = true;
        open_step(b, coil_ma);
    }
    while (b->running && b->step_t_s + b->step_len_s <= end_s) {
        integrate(b, b->step_t_s + b->step_len_s - b->t_s, coil_ma);
        close_step(b, coil_ma, closed);
        steps++;
    }
    integrate(b, end_s - b->t_s, coil_ma);
    return steps;
}

double stride_cadence_spm(const stride_sums_t *s)
{
    return s->steps < 2 || s->time_s <= 0.0 ? NAN : 60.0 * s->steps / s->time_s;
}

double stride_balance_left_pct(const stride_sums_t *s)
{
    return s->steps < 2 || s->impulse_ns <= 0.0 ? NAN : 100.0 * s->left_impulse_ns / s->impulse_ns;
}

double stride_length_m(const stride_sums_t *s)
{
    return s->steps < 2 ? NAN : s->length_m / s->steps;
}
