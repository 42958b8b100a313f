/* The simulated treadmill's belt and the athlete who runs it: the physics behind the encoder.
 *
 * The belt is a mass (its inertia referred to the belt surface) driven by the athlete's push
 * and held back by the eddy brake and friction:
 *
 *     m dv/dt = F_push(t) - F_brake(I, v) - F_friction(v)
 *
 * The athlete pushes in steps, left and right in turn, the first one left. Within a step the
 * push rises from nothing at the foot strike to twice its mean in mid stance and falls back to
 * nothing at the next strike (1 - cos 2 pi phase), so the belt speeds up in mid stance and slows
 * fastest at the strike. The athlete starts from standstill and brings the belt to speed in a
 * few steps; then each step's mean push is what it takes to hold the profile's speed against
 * the brake they feel, plus a correction for the speed they are off by over the last stride
 * (two steps, so the correction does not undo their own asymmetry); the left step then pushes
 * (1 + asym)x that and the right (1 - asym)x.
 *
 * The brake, friction and mass are the constants of millctl's nominal machine (config/
 * machine.toml [brake]), as the roller and encoder are: an uncalibrated controller's model of
 * the machine is then exact, and its impulse estimate (m dv + integral of brake and friction)
 * has this athlete's pushes as its truth. No part of millctl is used here. */
#ifndef MILL_SIM_BELT_H
#define MILL_SIM_BELT_H

#include <stdbool.h>
#include <stdint.h>

#include "profile.h"

#define BELT_MASS_KG 90.0
#define BRAKE_FORCE_MAX_N 600.0
#define BRAKE_CURRENT_MAX_MA 3000.0
#define BRAKE_CRITICAL_SPEED_MPS 1.5
#define FRICTION_COULOMB_N 15.0
#define FRICTION_VISCOUS_N_PER_MPS 4.0
/* At pace, the athlete closes a speed error over this time (seconds). */
#define ATHLETE_SPEED_TAU_S 1.5
/* Starting, the athlete speeds the belt up at this rate (m/s^2): 0 to 3 m/s in 2 s. */
#define ATHLETE_START_MPS2 1.5
/* Starting, the athlete is at pace once the belt runs this fraction of the profile's speed at
 * a foot strike. */
#define ATHLETE_AT_PACE 0.95
/* The most an athlete pushes on average over a step (N): a hard start from standstill. */
#define ATHLETE_MAX_PUSH_N 400.0
/* A step whose belt speed changes by less than this fraction of its speed is at an even pace
 * (the rule millctl's session figures use: docs/stride.md). */
#define STEADY_FRACTION 0.05

/* One step as it happened. */
typedef struct {
    unsigned index;   /* 0: the athlete's first step, a left one; then alternately */
    bool left;
    bool forward;
    double t_s;       /* the foot strike that opened it (simulated time, which is board time) */
    double duration_s;
    double impulse_ns;  /* integral of the push over the step, along the running direction */
    double length_m;    /* belt travel during the step */
    double speed_start_mps, speed_end_mps; /* belt speed at the strikes that open and close it */
    bool steady;
} step_truth_t;

/* Sums over the steps at an even pace: the figures millctl reports for a session. */
typedef struct {
    unsigned steps;
    double time_s, impulse_ns, left_impulse_ns, length_m;
} stride_sums_t;

typedef struct {
    profile_t profile;
    double direction;   /* +1 forward, -1 backward */
    double target_mps;  /* |profile speed| */
    double start_s;     /* the athlete steps on (before it, the belt stands) */
    double t_s;
    double x_m;         /* travel along the running direction, >= 0 */
    double v_mps;       /* speed along the running direction, >= 0 */
    double push_n;      /* the push at the latest instant integrated */
    /* the step under way */
    bool running;
    bool at_pace;
    unsigned index, pace_index;
    double step_t_s, step_len_s, step_mean_n, step_impulse_ns, step_x_m, step_v_mps;
    double strike_t_s[2], strike_x_m[2]; /* the two previous foot strikes, newest first */
    uint64_t rng;
    stride_sums_t sums;
    unsigned all_steps;
} belt_t;

/* A belt for this profile. Kinematic profiles (no athlete) run at their speed from t = 0; an
 * athlete steps on at `start_s` and brings the belt from standstill to speed. `seed` fixes the
 * step-to-step variation: runs are repeatable. */
void belt_init(belt_t *b, const profile_t *p, double start_s, uint64_t seed);

/* Advance the belt by dt_s with this coil current. Returns the number of steps completed in
 * the interval (0 or 1 for dt_s well under a step) and the last of them in *closed. */
int belt_advance(belt_t *b, double dt_s, double coil_ma, step_truth_t *closed);

/* Signed belt position (m) and speed (m/s): + forward. */
double belt_position_m(const belt_t *b);
double belt_speed_mps(const belt_t *b);

double brake_force_n(double coil_ma, double speed_mps);
double friction_n(double speed_mps);

/* Cadence (steps/min), balance (% of the impulse from the left), mean step length (m) of the
 * sums; NAN when there are fewer than 2 steps. */
double stride_cadence_spm(const stride_sums_t *s);
double stride_balance_left_pct(const stride_sums_t *s);
double stride_length_m(const stride_sums_t *s);

#endif
