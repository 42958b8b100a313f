#include "profile.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An option: its key, where it goes, its range. */
typedef struct {
    const char *key;
    size_t offset;
    double low, high;
} option_t;

static const option_t OPTIONS[] = {
    {"cadence", offsetof(profile_t, cadence_spm), PROFILE_MIN_CADENCE_SPM, PROFILE_MAX_CADENCE_SPM},
    {"asym", offsetof(profile_t, asym), -PROFILE_MAX_ASYM, PROFILE_MAX_ASYM},
    {"cv", offsetof(profile_t, step_cv), 0.0, PROFILE_MAX_STEP_CV},
    {"pushcv", offsetof(profile_t, push_cv), 0.0, PROFILE_MAX_PUSH_CV},
};
#define N_OPTIONS (sizeof OPTIONS / sizeof OPTIONS[0])
#define OPTION_HELP "use cadence=STEPS_PER_MIN, asym=FRACTION, cv=FRACTION or pushcv=FRACTION after ';'"

/* A number filling exactly [text, end): strtod alone would take "3.0x" as 3.0, or "nan". */
static bool parse_number(const char *text, const char *end, double *value)
{
    char buf[40];
    size_t len = (size_t)(end - text);
    if (len == 0 || len >= sizeof buf) {
        return false;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    char *stop;
    *value = strtod(buf, &stop);
    return *stop == '\0' && isfinite(*value);
}

/* One "key=value" of length `len`. */
static bool parse_option(const char *text, const char *item, size_t len, profile_t *p, bool *seen, char *error,
                         unsigned error_len)
{
    const char *eq = memchr(item, '=', len);
    size_t key_len = eq ? (size_t)(eq - item) : len;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const option_t *o = &OPTIONS[i];
        if (!eq || strlen(o->key) != key_len || strncmp(o->key, item, key_len) != 0) {
            continue;
        }
        double value;
        if (!parse_number(eq + 1, item + len, &value)) {
            snprintf(error, error_len, "profile '%.60s': %s=%.*s is not a number", text, o->key,
                     (int)fmin(40.0, (double)(item + len - eq - 1)), eq + 1);
            return false;
        }
        if (value < o->low || value > o->high) {
            snprintf(error, error_len, "profile '%.60s': %s must be within %g..%g, got %g", text, o->key, o->low,
                     o->high, value);
            return false;
        }
        if (seen[i]) {
            snprintf(error, error_len, "profile '%.60s': %s given twice", text, o->key);
            return false;
        }
        seen[i] = true;
        *(double *)((char *)p + o->offset) = value;
        return true;
    }
    snprintf(error, error_len, "profile '%.60s': unknown stride option '%.*s'; " OPTION_HELP, text, (int)(len < 40 ? len : 40), item);
    return false;
}

bool profile_parse(const char *text, profile_t *out, char *error, unsigned error_len)
{
    const char *prefix = "steady:";
    if (strncmp(text, prefix, strlen(prefix)) != 0) {
        snprintf(error, error_len, "unknown profile '%.60s': use steady:V (belt speed in m/s), then options after ';'",
                 text);
        return false;
    }
    const char *speed = text + strlen(prefix);
    const char *semi = strchr(speed, ';');
    const char *speed_end = semi ? semi : speed + strlen(speed);
    profile_t p = {.cadence_spm = PROFILE_DEFAULT_CADENCE_SPM, .step_cv = PROFILE_DEFAULT_STEP_CV};
    if (!parse_number(speed, speed_end, &p.speed_mps)) {
        snprintf(error, error_len, "profile '%.60s': the speed after 'steady:' is not a number", text);
        return false;
    }
    if (fabs(p.speed_mps) > PROFILE_MAX_SPEED_MPS) {
        snprintf(error, error_len, "profile '%.60s': |speed| above %.0f m/s", text, PROFILE_MAX_SPEED_MPS);
        return false;
    }
    bool seen[N_OPTIONS] = {false};
    for (const char *item = semi; item; item = strchr(item, ';')) {
        item++; /* past the ';' */
        const char *next = strchr(item, ';');
        size_t len = next ? (size_t)(next - item) : strlen(item);
        if (len == 0) {
            snprintf(error, error_len, "profile '%.60s': an empty option between ';'; " OPTION_HELP, text);
            return false;
        }
        if (!parse_option(text, item, len, &p, seen, error, error_len)) {
            return false;
        }
        p.athlete = true;
    }
    if (p.athlete && p.speed_mps == 0.0) {
        snprintf(error, error_len, "profile '%.60s': an athlete needs a speed (steady:0 is a standing belt)", text);
        return false;
    }
    *out = p;
    return true;
}
