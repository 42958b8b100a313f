#include "profile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Faster than this, simavr 1.6 mis-handles the encoder interrupts (~80 k edges/s) and no
 * athlete runs it anyway. */
#define PROFILE_MAX_SPEED_MPS 12.0

bool profile_parse(const char *text, profile_t *out, char *error, unsigned error_len)
{
    const char *prefix = "steady:";
    if (strncmp(text, prefix, strlen(prefix)) != 0) {
        snprintf(error, error_len, "unknown profile '%s': use steady:V (belt speed in m/s)", text);
        return false;
    }
    char *end;
    double v = strtod(text + strlen(prefix), &end);
    if (end == text + strlen(prefix) || (*end != '\0' && *end != ';') || !isfinite(v)) {
        snprintf(error, error_len, "profile '%s': the speed after 'steady:' is not a number", text);
        return false;
    }
    if (fabs(v) > PROFILE_MAX_SPEED_MPS) {
        snprintf(error, error_len, "profile '%s': |speed| above %.0f m/s", text, PROFILE_MAX_SPEED_MPS);
        return false;
    }
    out->speed_mps = v;
    return true;
}

double profile_speed_mps(const profile_t *p, double t_s)
{
    (void)t_s;
    return p->speed_mps;
}
