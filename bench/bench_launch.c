/*
 * bench_launch - what starting a program through a launcher costs.
 *
 *   build/bench/bench_launch [ROUNDS]     (default 100; run_cpu runs ROUNDS/10)
 *
 * Side by side, interleaved round by round so that every command sees the
 * same machine noise, the wall time from spawn to exit of:
 *   true                                       the floor
 *   numactl -C 0-1 -m 0 true                   the tool pinfer replaces
 *   pinfer run --no-python true                as users run it: it preloads
 *                                              tcmalloc and Intel OpenMP into
 *                                              `true` when it finds them
 *   env LD_PRELOAD=<the same libraries> true   what those preloads cost `true`
 *   pinfer run ... --memory-allocator default --omp-runtime default true
 *                                              the launcher alone, with the
 *                                              live topology from sysfs
 *   the same with PINFER_TOPOLOGY=hwloc        ... from hwloc, as before
 *   python3 -m torch.backends.xeon.run_cpu --no_python true
 * and the ratios the issue sets targets for (pinfer <= 2x numactl, >= 100x
 * faster than run_cpu; the launcher alone within 1.3x of numactl).
 */
#include "bench.h"
#include "pinfer.h"

#include <string.h>
#include <unistd.h>

enum { TRUE_, NUMACTL, PINFER, PRELOAD, PINFER_BARE, PINFER_BARE_HWLOC, RUN_CPU, NCOMMANDS };

/* One run of a command; PINFER_TOPOLOGY=hwloc in its environment for that row. */
static double time_command(int c, char *const *argv)
{
    if (c != PINFER_BARE_HWLOC)
        return bench_time_process(argv);
    setenv("PINFER_TOPOLOGY", "hwloc", 1);
    double t = bench_time_process(argv);
    unsetenv("PINFER_TOPOLOGY");
    return t;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 100;
    if (rounds < 10)
        rounds = 10;
    char *pinfer = realpath(getenv("PINFER") ? getenv("PINFER") : "build/pinfer", NULL);
    if (!pinfer) {
        fprintf(stderr, "bench_launch: build/pinfer not found (run from the repository root)\n");
        return 1;
    }
    /* run_cpu writes ./logs and refuses a non-empty one: work in a scratch directory. */
    char scratch[] = "/tmp/bench_launch.XXXXXX";
    if (!mkdtemp(scratch) || chdir(scratch) != 0) {
        fprintf(stderr, "bench_launch: cannot make a scratch directory\n");
        return 1;
    }
    bool have_run_cpu = access("/usr/bin/python3", X_OK) == 0 &&
                        system("/usr/bin/python3 -c 'import torch.backends.xeon.run_cpu' "
                               ">/dev/null 2>&1") == 0;

    /* The libraries pinfer run preloads here, for the LD_PRELOAD row. */
    char *tc = NULL, *omp = NULL;
    if (pf_library_find(PF_LIBRARY_TCMALLOC, NULL, true, &tc) < 0 &&
        pf_library_find(PF_LIBRARY_JEMALLOC, NULL, true, &tc) < 0)
        tc = NULL;
    if (pf_library_find(PF_LIBRARY_IOMP, NULL, true, &omp) < 0)
        omp = NULL;
    char preload[8192];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s%s%s", tc ? tc : "", tc && omp ? ":" : "",
             omp ? omp : "");

    char *const commands[NCOMMANDS][12] = {
        [TRUE_] = {"true", NULL},
        [NUMACTL] = {"numactl", "-C", "0-1", "-m", "0", "true", NULL},
        [PINFER] = {pinfer, "run", "--no-python", "true", NULL},
        [PRELOAD] = {"env", preload, "true", NULL},
        [PINFER_BARE] = {pinfer, "run", "--no-python", "--memory-allocator", "default",
                         "--omp-runtime", "default", "true", NULL},
        [PINFER_BARE_HWLOC] = {pinfer, "run", "--no-python", "--memory-allocator", "default",
                               "--omp-runtime", "default", "true", NULL},
        [RUN_CPU] = {"/usr/bin/python3", "-m", "torch.backends.xeon.run_cpu", "--no_python", "true",
                     NULL},
    };
    const char *names[NCOMMANDS] = {
        "true",
        "numactl -C 0-1 -m 0 true",
        "pinfer run --no-python true",
        "env LD_PRELOAD=<tcmalloc:iomp> true",
        "pinfer run --no-python (default allocator, GNU omp) true",
        "  the same, PINFER_TOPOLOGY=hwloc",
        "python3 -m torch.backends.xeon.run_cpu --no_python true",
    };
    double *t[NCOMMANDS];
    int n[NCOMMANDS] = {0};
    for (int c = 0; c < NCOMMANDS; c++)
        t[c] = calloc((size_t)rounds, sizeof *t[c]);
    for (int r = 0; r < rounds; r++)
        for (int c = 0; c < NCOMMANDS; c++) {
            if (c == RUN_CPU && (!have_run_cpu || r % 10 != 0))
                continue;
            t[c][n[c]++] = time_command(c, commands[c]);
            if (c == RUN_CPU && system("rm -rf logs") != 0)
                return 1;
        }
    printf("preloaded by pinfer here: %s\n", preload + strlen("LD_PRELOAD="));
    double med[NCOMMANDS];
    for (int c = 0; c < NCOMMANDS; c++) {
        if (n[c] == 0) {
            printf("%-56s (not available: python3-torch is not installed)\n", names[c]);
            med[c] = 0;
            continue;
        }
        bench_report(names[c], t[c], n[c]);
        med[c] = bench_percentile(t[c], n[c], 50);
    }
    printf("\nratios of medians:\n");
    printf("  pinfer run / numactl                        %6.2fx  (target <= 2x)\n",
           med[PINFER] / med[NUMACTL]);
    printf("  pinfer run (no preloads) / numactl          %6.2fx  (target <= 1.3x)\n",
           med[PINFER_BARE] / med[NUMACTL]);
    printf("  the same, PINFER_TOPOLOGY=hwloc / numactl   %6.2fx\n",
           med[PINFER_BARE_HWLOC] / med[NUMACTL]);
    printf("  pinfer run - (env LD_PRELOAD=... true)      %6.0f us (the launcher's own share)\n",
           med[PINFER] - med[PRELOAD]);
    if (med[RUN_CPU] > 0) {
        printf("  run_cpu / pinfer run                        %6.0fx  (target >= 100x)\n",
               med[RUN_CPU] / med[PINFER]);
        printf("  run_cpu / pinfer run (no preloads)          %6.0fx\n",
               med[RUN_CPU] / med[PINFER_BARE]);
    }
    for (int c = 0; c < NCOMMANDS; c++)
        free(t[c]);
    free(tc);
    free(omp);
    free(pinfer);
    if (chdir("/") != 0 || rmdir(scratch) != 0)
        fprintf(stderr, "bench_launch: %s is left behind\n", scratch);
    return 0;
}
