/*
 * fuzz_cpulist.c - libFuzzer target for the CPU-list parser.
 *
 * Property: parsing never crashes or leaks; a list that parses formats to a
 * list that parses back to the same ids, and the result is ascending and
 * unique.
 */
#include "pinfer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    int *ids = NULL;
    size_t n = 0;
    char *why = NULL;
    if (pf_cpulist_parse(text, &ids, &n, &why) == 0) {
        for (size_t i = 1; i < n; i++)
            if (ids[i] <= ids[i - 1])
                abort();
        char *formatted = NULL;
        if (pf_cpulist_format(ids, n, &formatted) != 0)
            abort();
        int *again = NULL;
        size_t m = 0;
        if (pf_cpulist_parse(formatted, &again, &m, NULL) != 0 || m != n ||
            memcmp(again, ids, n * sizeof *ids) != 0)
            abort();
        free(again);
        free(formatted);
    } else if (!why) {
        abort(); /* every failure explains itself */
    }
    free(why);
    free(ids);
    free(text);
    return 0;
}
