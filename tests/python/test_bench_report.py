"""`pinfer bench`'s report folder as a reader gets it: a small C program, linked with
build/libpinfer.a as a user's program would be, fills a realistic report (default, threads
and pinned on 16 CPUs with latency CDFs and per-CPU heat maps, plus a configuration that
failed) and writes report.html, bench.json and bench.csv through the public API; chromium
renders the page (bench_browser.py), Python's json and csv modules read the rest."""
import csv
import json
import os
import subprocess

import pytest

from bench_browser import check_report_renders
from conftest import ROOT

WRITER = r"""
#include <pinfer.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        exit(3);
    return d;
}

/* A deterministic noise in [0, 1). */
static double noise(unsigned *state)
{
    *state = *state * 1103515245u + 12345u;
    return (double)((*state >> 8) & 0xffff) / 65536.0;
}

/* A latency CDF: a body around p50 and a tail that reaches p99 and max. */
static void cdf(pf_bench_config *c)
{
    static const double pcts[] = {0, 1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 97, 98,
                                  99, 99.5, 99.9, 100};
    size_t n = sizeof pcts / sizeof *pcts;
    c->cdf = calloc(n, sizeof *c->cdf);
    c->ncdf = n;
    for (size_t i = 0; i < n; i++) {
        double p = pcts[i] / 100;
        double body = c->p50_ms * (0.55 + 0.9 * p);
        double tail = p > 0.9 ? (c->p99_ms - c->p90_ms) * pow((p - 0.9) / 0.09, 2) : 0;
        double ms = body + tail;
        if (pcts[i] >= 99)
            ms = c->p99_ms + (c->max_ms - c->p99_ms) * (pcts[i] - 99) / 1;
        c->cdf[i].pct = pcts[i];
        c->cdf[i].ms = ms;
    }
}

/* 16 CPUs over 15 s at 0.25 s: `busy` decides each CPU's share in each sample. */
static void cpu_map(pf_bench_config *c, int kind, unsigned seed)
{
    pf_bench_cpu_map *m = &c->cpu_map;
    m->interval_s = 0.25;
    m->nsamples = 60;
    m->ncpus = 16;
    m->cpus = calloc(16, sizeof *m->cpus);
    m->busy = calloc(60 * 16, sizeof *m->busy);
    for (int k = 0; k < 16; k++)
        m->cpus[k] = k;
    for (size_t s = 0; s < 60; s++)
        for (size_t k = 0; k < 16; k++) {
            double v;
            if (kind == 0) /* oversubscribed: everything busy, unevenly */
                v = 55 + 45 * noise(&seed);
            else if (kind == 1) /* the threads wander: a few CPUs busy at a time */
                v = noise(&seed) < 0.5 ? 85 + 15 * noise(&seed) : 10 * noise(&seed);
            else /* pinned: 2 workers x 4 threads on CPUs 0-7, the rest idle */
                v = k < 8 ? 92 + 8 * noise(&seed) : 2 * noise(&seed);
            m->busy[s * 16 + k] = v;
        }
}

static void config(pf_bench_config *c, const char *name, const char *description,
                   int threads, double throughput, double p50, double p99)
{
    c->name = dup(name);
    c->description = dup(description);
    c->workers = 2;
    c->threads = threads;
    c->command = dup("OMP_NUM_THREADS=8 pinfer serve --model resnet50.pt --workers 2");
    c->duration_s = 15;
    c->requests = (long long)(throughput * 15);
    c->failed = 0;
    c->throughput = throughput;
    c->p50_ms = p50;
    c->p90_ms = p50 * 1.4;
    c->p99_ms = p99;
    c->max_ms = p99 * 1.6;
    c->mean_ms = p50 * 1.1;
    c->cpu_pct = 90;
    c->migrations_per_s = -1;
    c->cross_node_migrations_per_s = -1;
    c->run_wait_pct = -1;
    c->smt_shared = -1;
    c->local_memory_pct = -1;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    bool program = strcmp(argv[2], "program") == 0;
    pf_bench_report r;
    memset(&r, 0, sizeof r);
    r.mode = dup(program ? "program" : "serve");
    r.unit = dup(program ? "inferences/s" : "req/s");
    r.target = dup(program ? "build/pinfer-demo --seconds 3" : "resnet50 <built-in> & co");
    r.load = dup(program ? "4 instances" : "builtin closed loop, 100 connections");
    r.machine = dup("1 socket, 8 cores, 16 CPUs, Example(R) CPU @ 2.50GHz");
    r.started = dup("2024-05-01T10:00:00Z");
    r.command = dup("pinfer bench --workers 2 --report 'out dir'");
    r.plan_json = dup("{\"ninstances\": 2, \"instances\": [{\"cpus\": \"0-3\"}, "
                      "{\"cpus\": \"4-7\"}]}");
    r.verdict = dup("pinned: 1.85x the throughput of default and 0.21x its p99");
    r.nconfigs = 4;
    r.configs = calloc(4, sizeof *r.configs);
    config(&r.configs[0], "default", "no binding, 8 threads per worker (oversubscribed)", 8,
           412.5, 38, 190);
    config(&r.configs[1], "threads", "no binding, 4 threads per worker", 4, 598.25, 27, 71);
    config(&r.configs[2], "pinned", "pinfer's plan: 4 cores per worker, memory bound", 4,
           763.125, 24, 40);
    r.configs[0].failed = 12;
    r.configs[0].migrations_per_s = 1432.5;
    r.configs[0].cross_node_migrations_per_s = 0;
    r.configs[0].local_memory_pct = 100;
    r.configs[1].migrations_per_s = 310.25;
    r.configs[1].local_memory_pct = 100;
    r.configs[2].migrations_per_s = 0;
    r.configs[2].local_memory_pct = 100;
    r.configs[0].findings = calloc(3, sizeof(char *));
    r.configs[0].findings[0] = dup("OVERSUBSCRIBED: 16 busy threads on 8 cores");
    r.configs[0].findings[1] = dup("FLOATING: 14 threads moved more than 10 times a second");
    r.configs[0].nfindings = 2;
    for (int i = 0; i < 3; i++) {
        if (program) {
            pf_bench_config *c = &r.configs[i];
            c->p50_ms = c->p90_ms = c->p99_ms = c->max_ms = c->mean_ms = -1;
            c->migrations_per_s = c->local_memory_pct = -1;
        } else {
            cdf(&r.configs[i]);
            cpu_map(&r.configs[i], i, 7u + (unsigned)i);
        }
    }
    pf_bench_config *bad = &r.configs[3];
    bad->name = dup("pinned+jemalloc");
    bad->description = dup("pinned, with <jemalloc> & \"its\" 'settings'");
    bad->command = dup("LD_PRELOAD=libjemalloc.so.2 pinfer serve");
    bad->error = dup("libjemalloc.so.2 not found: apt-get install libjemalloc2 <or> \"skip\"");
    bad->workers = 2;
    bad->threads = 4;
    bad->requests = bad->failed = -1;
    bad->throughput = bad->mean_ms = bad->p50_ms = bad->p90_ms = bad->p99_ms = -1;
    bad->max_ms = bad->cpu_pct = bad->migrations_per_s = -1;
    bad->cross_node_migrations_per_s = bad->run_wait_pct = bad->local_memory_pct = -1;
    bad->smt_shared = -1;

    static const char *const files[] = {"report.html", "bench.json", "bench.csv"};
    for (int f = 0; f < 3; f++) {
        char *text = NULL;
        int rc = f == 0 ? pf_bench_report_to_html(&r, &text)
               : f == 1 ? pf_bench_report_to_json(&r, &text)
                        : pf_bench_report_to_csv(&r, &text);
        if (rc < 0) {
            fprintf(stderr, "%s: %s\n", files[f], pf_strerror(rc));
            return 1;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[1], files[f]);
        FILE *out = fopen(path, "w");
        if (!out || fputs(text, out) < 0 || fclose(out) != 0) {
            perror(path);
            return 1;
        }
        free(text);
    }
    pf_bench_report_clear(&r);
    return 0;
}
"""


@pytest.fixture(scope="module")
def writer(tmp_path_factory):
    """The writer program, linked with build/libpinfer.a (built if missing or stale)."""
    built = subprocess.run(["make", "-C", ROOT, "-s", "build/libpinfer.a"],
                           capture_output=True, text=True)
    assert built.returncode == 0, "make build/libpinfer.a failed:\n" + built.stdout + built.stderr
    tmp = tmp_path_factory.mktemp("writer")
    src = tmp / "writer.c"
    src.write_text(WRITER)
    exe = tmp / "writer"
    libs = subprocess.run(["pkg-config", "--libs", "hwloc", "jansson"], check=True,
                          capture_output=True, text=True).stdout.split()
    proc = subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Werror",
                           "-I", os.path.join(ROOT, "include"), "-o", str(exe), str(src),
                           os.path.join(ROOT, "build", "libpinfer.a")] + libs
                          + ["-lpthread", "-lm"], capture_output=True, text=True)
    assert proc.returncode == 0, "the writer does not build:\n" + proc.stderr
    return exe


def write_report(writer, folder, mode):
    folder.mkdir()
    proc = subprocess.run([str(writer), str(folder), mode], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, "the writer failed: " + proc.stderr
    return folder


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_serving_report_renders_and_reads(writer, tmp_path):
    folder = write_report(writer, tmp_path / "report", "serve")
    layout = check_report_renders(folder / "report.html", tmp_path)
    heatmaps = [c for c in layout["charts"] if "heatmap" in c["cls"].split()]
    assert len(heatmaps) == 3, "one heat map per measured configuration: %r" % heatmaps

    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "resnet50 &lt;built-in&gt; &amp; co" in page
    assert "<jemalloc>" not in page and "&lt;jemalloc&gt;" in page

    doc = json.loads((folder / "bench.json").read_text(encoding="utf-8"))
    assert doc["baseline"] == "default"
    assert doc["plan"]["ninstances"] == 2
    names = [c["name"] for c in doc["configs"]]
    assert names == ["default", "threads", "pinned", "pinned+jemalloc"]
    default, threads, pinned, bad = doc["configs"]
    assert default["throughput_ratio"] == 1.0
    assert pinned["throughput_ratio"] == round(763.125 / 412.5, 3)
    assert pinned["p99_ratio"] == round(40 / 190, 3)
    assert threads["migrations_per_s"] == 310.25
    assert default["smt_shared"] is None and default["run_wait_pct"] is None
    assert len(pinned["cdf"]) == 19 and pinned["cdf"][-1] == {"pct": 100.0, "ms": 64.0}
    assert len(pinned["cpu_map"]["busy"]) == 60
    assert all(len(row) == 16 for row in pinned["cpu_map"]["busy"])
    assert bad["error"].startswith("libjemalloc.so.2 not found")
    for key in ("throughput", "throughput_ratio", "p99_ms", "p99_ratio", "cdf", "cpu_map",
                "requests", "failed"):
        assert bad[key] is None, key

    rows = read_csv(folder / "bench.csv")
    assert [r["Configuration"] for r in rows] == names
    first = list(rows[0].keys())
    assert first[:12] == ["Benchmark", "Workers", "Model", "Requests", "TS failed requests",
                          "TS throughput", "TS latency P50", "TS latency P90", "TS latency P99",
                          "TS latency mean", "TS error rate", "cpu_percentage_mean"]
    assert rows[0]["Model"] == "resnet50 <built-in> & co"
    assert float(rows[2]["TS throughput"]) == 763.125
    assert float(rows[2]["TS latency P99"]) == 40
    assert float(rows[1]["P99 ratio"]) == round(71 / 190, 3)
    assert rows[0]["Findings"].startswith("OVERSUBSCRIBED: ")
    assert rows[3]["TS throughput"] == "" and rows[3]["Throughput ratio"] == ""
    assert rows[3]["Description"] == "pinned, with <jemalloc> & \"its\" 'settings'"
    assert rows[3]["Error"].endswith("<or> \"skip\"")


def test_program_mode_report_renders(writer, tmp_path):
    """No latencies, no CPU maps: the throughput chart alone, notes for the others."""
    folder = write_report(writer, tmp_path / "report", "program")
    check_report_renders(folder / "report.html", tmp_path, kinds=("throughput",))
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert 'class="chart cdf"' not in page and 'class="chart heatmap"' not in page
    assert "No latency distribution was measured" in page
    doc = json.loads((folder / "bench.json").read_text(encoding="utf-8"))
    assert all(c["p99_ms"] is None and c["cdf"] is None for c in doc["configs"])
    rows = read_csv(folder / "bench.csv")
    assert rows[0]["Benchmark"] == "program" and rows[0]["TS latency P50"] == ""
