/*
 * streams.c - N executors over one pool, and a batch split over them.
 *
 * A run hands each non-empty chunk to its stream's executor, then waits for
 * the futures in stream order.  Runs are serialised by a mutex held from the
 * first submission to the last wait: two runs whose chunks were queued in
 * different orders on different streams could otherwise deadlock a fn that
 * synchronises its chunks (all chunks of a run are meant to run at once), and
 * the chunk descriptors can live in the streams object.
 */
#include "pinfer_runtime.h"
#include "base/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct chunk {
    pf_stream_fn fn;
    void *ctx;
    int stream;
    size_t begin, end;
} chunk;

struct pf_streams {
    int n;   /* streams */
    int cap; /* slots allocated: n, or fewer started when create fails */
    pf_executor **executors;
    pf_pool **pools;
    pthread_mutex_t run_lock;
    chunk *chunks;       /* [n], under run_lock */
    pf_future **futures; /* [n], under run_lock */
};

static int run_chunk(void *arg)
{
    chunk *c = arg;
    return c->fn(c->ctx, c->stream, c->begin, c->end);
}

int pf_streams_create(const pf_pool *pool, int nstreams, pf_streams **out, char **why)
{
    if (!pool || !out)
        return pf__fail(why, -EINVAL, "no pool, or no place for the streams");
    size_t ncpus;
    const int *cpus = pf_pool_cpus(pool, &ncpus);
    if (nstreams < 0)
        return pf__fail(why, -EINVAL,
                        "%d streams: the count must be positive, or 0 for one "
                        "per CPU",
                        nstreams);
    if (nstreams == PF_STREAMS_AUTO)
        nstreams = ncpus > (size_t)INT32_MAX ? INT32_MAX : (int)ncpus;
    if ((size_t)nstreams > ncpus)
        return pf__fail(why, -EINVAL,
                        "%d streams over a pool of %zu CPUs: at most one stream "
                        "per CPU",
                        nstreams, ncpus);

    pf_streams *s = calloc(1, sizeof *s);
    if (!s)
        return pf__fail(why, -ENOMEM, "out of memory");
    pthread_mutex_init(&s->run_lock, NULL);
    s->cap = nstreams;
    s->executors = calloc((size_t)nstreams, sizeof *s->executors);
    s->pools = calloc((size_t)nstreams, sizeof *s->pools);
    s->chunks = calloc((size_t)nstreams, sizeof *s->chunks);
    s->futures = calloc((size_t)nstreams, sizeof *s->futures);
    int rc = 0;
    if (!s->executors || !s->pools || !s->chunks || !s->futures) {
        rc = pf__fail(why, -ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < nstreams; i++) {
        size_t begin, end;
        pf_split_range(ncpus, (size_t)nstreams, (size_t)i, &begin, &end);
        rc = pf_pool_from_list(cpus + begin, end - begin, &s->pools[i], why);
        if (rc < 0)
            goto fail;
        rc = pf_executor_create(s->pools[i], &s->executors[i], why);
        if (rc < 0)
            goto fail;
    }
    s->n = nstreams;
    *out = s;
    return 0;

fail:
    pf_streams_free(s);
    return rc;
}

int pf_streams_run(pf_streams *s, size_t batch, pf_stream_fn fn, void *ctx)
{
    if (!s || !fn)
        return -EINVAL;
    for (int i = 0; i < s->n; i++)
        if (pf_executor_in_worker(s->executors[i]))
            return -EDEADLK; /* its own chunk would wait behind the running one */
    if (batch == 0)
        return 0;
    size_t active = batch < (size_t)s->n ? batch : (size_t)s->n;
    pthread_mutex_lock(&s->run_lock);
    int submit_rc = 0;
    size_t submitted = 0;
    for (; submitted < active; submitted++) {
        chunk *c = &s->chunks[submitted];
        c->fn = fn;
        c->ctx = ctx;
        c->stream = (int)submitted;
        pf_split_range(batch, (size_t)s->n, submitted, &c->begin, &c->end);
        submit_rc =
            pf_executor_submit(s->executors[submitted], run_chunk, c, &s->futures[submitted]);
        if (submit_rc < 0)
            break;
    }
    /* Wait for everything that was queued, even after a failed submission:
       the chunks point into this object.  The lowest failing stream wins. */
    int rc = 0;
    for (size_t i = 0; i < submitted; i++) {
        int result = 0;
        pf_future_wait(s->futures[i], &result);
        pf_future_free(s->futures[i]);
        if (result != 0 && rc == 0)
            rc = result;
    }
    if (rc == 0)
        rc = submit_rc;
    pthread_mutex_unlock(&s->run_lock);
    return rc;
}

int pf_streams_count(const pf_streams *s)
{
    return s ? s->n : 0;
}

const pf_pool *pf_streams_pool(const pf_streams *s, int i)
{
    if (!s || i < 0 || i >= s->n)
        return NULL;
    return s->pools[i];
}

void pf_streams_free(pf_streams *s)
{
    if (!s)
        return;
    /* Every slot up to cap: a failed create leaves some NULL. */
    for (int i = 0; i < s->cap; i++) {
        if (s->executors)
            pf_executor_free(s->executors[i]);
        if (s->pools)
            pf_pool_free(s->pools[i]);
    }
    pthread_mutex_destroy(&s->run_lock);
    free(s->executors);
    free(s->pools);
    free(s->chunks);
    free(s->futures);
    free(s);
}
