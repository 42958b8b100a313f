/* Runner profiles for the simulated board: what the athlete does to the belt. */
#ifndef MILL_SIM_PROFILE_H
#define MILL_SIM_PROFILE_H

#include <stdbool.h>

/* Stride option ranges (the same options and ranges as millctl's own simulator). */
#define PROFILE_MAX_SPEED_MPS 12.0
#define PROFILE_MIN_CADENCE_SPM 40.0
#define PROFILE_MAX_CADENCE_SPM 240.0
#define PROFILE_MAX_ASYM 0.5
#define PROFILE_MAX_STEP_CV 0.2
#define PROFILE_MAX_PUSH_CV 0.3
/* An athlete whose cadence is not given steps at this rate. */
#define PROFILE_DEFAULT_CADENCE_SPM 170.0
#define PROFILE_DEFAULT_STEP_CV 0.02

typedef struct {
    double speed_mps;   /* steady:V — signed: + forward, - backward */
    /* Options after ';'. Without any, the belt is kinematic: it runs at V from the start and
     * carries no stride. With any, an athlete runs it (sim/athlete.h). */
    bool athlete;
    double cadence_spm; /* steps per minute */
    double asym;        /* the left push is (1 + asym)x the nominal, the right (1 - asym)x */
    double step_cv;     /* step-to-step variation of the step time */
    double push_cv;     /* step-to-step variation of the push */
} profile_t;

/* Parse "steady:V" with optional ";cadence=176;asym=0.08;cv=0.02;pushcv=0.05". Returns false
 * with a message naming the bad part in `error` (unknown key, not a number, out of range, given
 * twice); `out` is then unchanged. */
bool profile_parse(const char *text, profile_t *out, char *error, unsigned error_len);

#endif
