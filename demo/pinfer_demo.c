/*
 * pinfer-demo - an inference-like workload: a stack of dense layers (float,
 * ReLU) applied to a stream of input batches with OpenMP, for a fixed time.
 * It prints one line "pinfer-demo: <n> inferences/s (...)" so that scripts
 * can add up the throughput of several instances.
 *
 *   pinfer-demo [--seconds S] [--batch B] [--hidden H] [--layers L]
 *
 * Defaults: 3 s, batch 8, 1024 hidden units, 4 layers (16 MiB of weights:
 * larger than a core's caches, as real models are).  The checksum is that
 * of the first batch's outputs, summed in index order: each output is
 * computed by one thread in a fixed order, so it is the same on every run,
 * with any number of threads and for any duration (it shows that pinning
 * changed the speed, not the results).
 */
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct demo_options {
    double seconds;
    int batch, hidden, layers;
} demo_options;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_positive(const char *name, const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (!*text || *end || errno || !(v > 0) || v > 1e6) {
        fprintf(stderr, "pinfer-demo: error: %s: '%s' is not a positive number\n", name, text);
        return -1;
    }
    *out = v;
    return 0;
}

static void usage(FILE *out)
{
    fputs("usage: pinfer-demo [--seconds S] [--batch B] [--hidden H] [--layers L]\n"
          "\n"
          "An inference-like OpenMP workload: L dense HxH layers (ReLU) applied to\n"
          "batches of B inputs for S seconds; prints inferences per second, the\n"
          "thread count and a checksum that is the same on every run.\n"
          "Defaults: --seconds 3 --batch 8 --hidden 1024 --layers 4.\n",
          out);
}

/* 0: run; 1: done (--help); -1: a usage error (said). */
static int parse_args(int argc, char **argv, demo_options *o)
{
    *o = (demo_options){3.0, 8, 1024, 4};
    for (int i = 1; i < argc; i++) {
        double v;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "pinfer-demo: error: %s needs a value\n", argv[i]);
            return -1;
        }
        if (parse_positive(argv[i], argv[i + 1], &v) < 0)
            return -1;
        if (!strcmp(argv[i], "--seconds"))
            o->seconds = v;
        else if (!strcmp(argv[i], "--batch"))
            o->batch = (int)v;
        else if (!strcmp(argv[i], "--hidden"))
            o->hidden = (int)v;
        else if (!strcmp(argv[i], "--layers"))
            o->layers = (int)v;
        else {
            fprintf(stderr, "pinfer-demo: error: unknown option %s (--help lists them)\n", argv[i]);
            return -1;
        }
        i++;
    }
    if (o->batch < 1 || o->hidden < 1 || o->layers < 1 || o->hidden > 16384) {
        fprintf(stderr, "pinfer-demo: error: sizes out of range\n");
        return -1;
    }
    return 0;
}

/* out[b][j] = relu(sum_k in[b][k] * w[j][k] + bias[j]): rows of W split over the team. */
static void dense(const float *w, const float *bias, const float *in, float *out, int batch, int n)
{
#pragma omp parallel for schedule(static)
    for (int j = 0; j < n; j++) {
        const float *row = w + (size_t)j * n;
        for (int b = 0; b < batch; b++) {
            const float *x = in + (size_t)b * n;
            float acc = bias[j];
            for (int k = 0; k < n; k++)
                acc += row[k] * x[k];
            out[(size_t)b * n + j] = acc > 0 ? acc : 0;
        }
    }
}

int main(int argc, char **argv)
{
    demo_options o;
    int parsed = parse_args(argc, argv, &o);
    if (parsed != 0)
        return parsed < 0 ? 2 : 0;
    size_t n = (size_t)o.hidden, per_layer = n * n;
    float *w = malloc(per_layer * (size_t)o.layers * sizeof *w);
    float *bias = malloc(n * (size_t)o.layers * sizeof *bias);
    float *a = malloc(n * (size_t)o.batch * sizeof *a),
          *b = malloc(n * (size_t)o.batch * sizeof *b);
    if (!w || !bias || !a || !b) {
        fprintf(stderr, "pinfer-demo: error: out of memory\n");
        return 1;
    }
    /* Deterministic weights scaled to keep activations bounded. */
    unsigned seed = 12345;
    for (size_t i = 0; i < per_layer * (size_t)o.layers; i++) {
        seed = seed * 1103515245u + 12345u;
        w[i] = ((float)((seed >> 16) & 0x7fff) / 32768.0f - 0.5f) * 2.0f / (float)o.hidden;
    }
    for (size_t i = 0; i < n * (size_t)o.layers; i++)
        bias[i] = 0.01f;
    long inferences = 0;
    double start = now_s(), elapsed = 0;
    double checksum = 0;
    while (elapsed < o.seconds) {
        for (size_t i = 0; i < n * (size_t)o.batch; i++)
            a[i] = (float)((i + (size_t)inferences) % 17) / 17.0f;
        float *in = a, *out = b;
        for (int l = 0; l < o.layers; l++) {
            dense(w + per_layer * (size_t)l, bias + n * (size_t)l, in, out, o.batch, o.hidden);
            float *t = in;
            in = out;
            out = t;
        }
        if (inferences == 0)
            for (size_t i = 0; i < n * (size_t)o.batch; i++)
                checksum += in[i];
        inferences += o.batch;
        elapsed = now_s() - start;
    }
    int threads = omp_get_max_threads();
    printf("pinfer-demo: %.1f inferences/s (%d %s, batch %d, %d x %dx%d layers, %.1f s, "
           "checksum %.6f)\n",
           inferences / elapsed, threads, threads == 1 ? "thread" : "threads", o.batch, o.layers,
           o.hidden, o.hidden, elapsed, checksum);
    free(w);
    free(bias);
    free(a);
    free(b);
    return 0;
}
