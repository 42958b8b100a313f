/* Belt-speed profiles for the simulated board: what the athlete does to the belt. */
#ifndef MILL_SIM_PROFILE_H
#define MILL_SIM_PROFILE_H

#include <stdbool.h>

typedef struct {
    double speed_mps; /* steady:V — signed: + forward, - backward */
} profile_t;

/* Parse "steady:V" (options after ';' are accepted and ignored, as millctl's runner profiles
 * allow). Returns false with a message in `error` when the text is not a profile. */
bool profile_parse(const char *text, profile_t *out, char *error, unsigned error_len);

/* Belt speed at time t, m/s. */
double profile_speed_mps(const profile_t *p, double t_s);

#endif
