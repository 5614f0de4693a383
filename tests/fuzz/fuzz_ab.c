/*
 * fuzz_ab.c - libFuzzer target for Apache Bench's report parser
 * (src/bench/ab.c, pf_ab_parse).
 *
 * The input is the report's text (not NUL-terminated: a parser that reads
 * past its length is caught by ASan).  Properties: nothing crashes or
 * leaks; success exactly when a count was read from "Complete requests"
 * (complete >= 0), a failure with one line saying why; every other field
 * is -1 (unknown) or a non-negative finite number, non_2xx 0 or more when
 * the line was absent.
 */
#include "pinfer.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_measure(double v)
{
    if (!(v == -1 || (v >= 0 && isfinite(v))))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1); /* exactly size bytes: no terminator */
    if (!text)
        return 0;
    memcpy(text, data, size);
    pf_ab_result r;
    char *why = NULL;
    int rc = pf_ab_parse(text, size, &r, &why);
    if (rc == 0) {
        if (r.complete < 0 || why)
            abort();
    } else if (rc != -EINVAL || !why || strchr(why, '\n')) {
        abort();
    }
    if (r.failed < -1 || r.non_2xx < -1)
        abort();
    const double m[] = {r.time_taken_s, r.requests_per_s, r.mean_ms, r.p50_ms, r.p66_ms, r.p75_ms,
                        r.p80_ms,       r.p90_ms,         r.p95_ms,  r.p98_ms, r.p99_ms, r.p100_ms};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        check_measure(m[i]);
    free(why);
    free(text);
    return 0;
}
