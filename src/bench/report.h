/*
 * report.h - what the report writers (report.c: JSON and CSV; html.c: the
 * page) share.
 */
#ifndef PF_BENCH_REPORT_H
#define PF_BENCH_REPORT_H

#include "pinfer.h"

#include <locale.h>

/*
 * The index of the configuration named "default" (the case study's
 * baseline, TorchServe as it comes), if it was measured; -1 when there is
 * none.  No other configuration stands in for it: a ratio to something
 * else under the same name would mislead.
 */
long pf__bench_baseline(const pf_bench_report *r);

/*
 * Numbers are written with printf and read back with strtod
 * (pf__format_double), both of which follow LC_NUMERIC: a program that
 * called setlocale(LC_ALL, "") in a German locale would get "12,5", which
 * is neither JSON, a CSV number nor an SVG coordinate.  The writers run in
 * the C locale on the calling thread only (uselocale), so other threads are
 * not disturbed.
 */
typedef struct pf__c_numbers {
    locale_t c, saved;
} pf__c_numbers;

/* 0, or -ENOMEM (nothing changed). */
int pf__c_numbers_begin(pf__c_numbers *n);
void pf__c_numbers_end(pf__c_numbers *n);

#endif /* PF_BENCH_REPORT_H */
