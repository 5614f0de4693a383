"""`pinfer tune` end to end: every trial through the real launcher (`pinfer run`) on this
machine, with a workload whose best configuration is known (tune_workload.py: its
throughput a known function of its instances, threads and preloads, so no noise); the
search must find the optimum, `auto` with fewer trials than the grid; crashes, hangs,
resuming, IPEX hypertune's objective lines and conf file, and the bad inputs."""
import csv
import json
import os
import subprocess

import pytest

from conftest import ROOT, allowed_cpus, pinfer_path

PYTHON = "/usr/bin/python3"
WORKLOAD = os.path.join(ROOT, "tests", "python", "tune_workload.py")
METRIC = r"([0-9.]+) items/s"
TIMEOUT = 300


def env():
    e = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"), PINFER_PYTHON=PYTHON)
    e.pop("TMPDIR", None)
    return e


def tune(args, tmp_path, name="out", program=None, timeout=TIMEOUT):
    out = tmp_path / name
    command = [pinfer_path(), "tune", "--output", str(out)] + list(args)
    if program is not None:
        command += ["--"] + list(program)
    proc = subprocess.run(command, capture_output=True, text=True, env=env(), timeout=timeout,
                          stdin=subprocess.DEVNULL)
    return proc, out


def record(out):
    with open(out / "record.csv", newline="") as f:
        return list(csv.DictReader(f))


def result(out):
    with open(out / "tune.json") as f:
        return json.load(f)


def best_row(out):
    doc = result(out)
    assert doc["best"] is not None and doc["best"] >= 0
    return doc["trials"][doc["best"]]


# The optimum of each function on any machine: the knobs' best values (the split's is
# the most instances for "threads" and "interaction", the fewest for "instances").
def expected(function, trial):
    knobs = trial["config"]
    n, c = (int(x) for x in knobs["split"].split("x"))
    if function == "threads":
        return c == 1 and knobs["allocator"] == "jemalloc" and knobs["omp"] == "intel" \
            and knobs["kmp_blocktime"] == "0"
    if function == "instances":
        return n == 1 and knobs["allocator"] == "tcmalloc" and knobs["omp"] == "default"
    if function == "interaction":
        return c == 1 and knobs["allocator"] == "jemalloc" and knobs["omp"] == "intel" \
            and knobs["kmp_blocktime"] == "200"
    raise AssertionError(function)


def have_all_libraries():
    topo = subprocess.run([pinfer_path(), "topo", "--json"], capture_output=True, text=True,
                          timeout=60, check=True).stdout
    return all(k in topo for k in ("tcmalloc", "jemalloc", "iomp"))


@pytest.mark.parametrize("function", ["threads", "instances", "interaction"])
def test_auto_finds_the_optimum_with_fewer_trials(function, tmp_path):
    assert have_all_libraries(), "scripts/setup.sh installs tcmalloc, jemalloc and libomp"
    proc, out = tune(["--metric", METRIC], tmp_path, program=[WORKLOAD, function])
    assert proc.returncode == 0, proc.stderr
    best = best_row(out)
    assert expected(function, best), (best, proc.stdout)
    grid, gout = tune(["--metric", METRIC, "--strategy", "grid"], tmp_path, name="grid",
                      program=[WORKLOAD, function])
    assert grid.returncode == 0, grid.stderr
    assert expected(function, best_row(gout))
    ngrid, nauto = len(result(gout)["trials"]), len(result(out)["trials"])
    assert nauto * 3 <= ngrid or ngrid <= 6, (nauto, ngrid)
    assert "best: " in proc.stdout and "pinfer run" in proc.stdout
    assert "record: %s/record.csv" % out in proc.stdout


def test_grid_runs_every_configuration_once(tmp_path):
    proc, out = tune(["--metric", METRIC, "--strategy", "grid"], tmp_path,
                     program=[WORKLOAD, "threads"])
    assert proc.returncode == 0, proc.stderr
    configs = [json.dumps(t["config"], sort_keys=True) for t in result(out)["trials"]]
    assert len(configs) == len(set(configs))
    rows = record(out)
    assert len(rows) == len(configs)
    # hypertune's columns first, then pinfer's
    assert list(rows[0])[:7] == ["ncore_per_instance", "ninstances", "use_all_nodes",
                                 "use_logical_core", "disable_numactl", "disable_iomp", "malloc"]


def test_random_respects_max_trials(tmp_path):
    proc, out = tune(["--metric", METRIC, "--strategy", "random", "--max-trials", "4",
                      "--seed", "7"], tmp_path, program=[WORKLOAD, "threads"])
    assert proc.returncode == 0, proc.stderr
    assert len(result(out)["trials"]) == 4


def test_the_default_is_the_first_trial_and_the_ratios_are_to_it(tmp_path):
    proc, out = tune(["--metric", METRIC, "--max-trials", "3"], tmp_path,
                     program=[WORKLOAD, "threads"])
    assert proc.returncode == 0, proc.stderr
    doc = result(out)
    assert doc["trials"][0]["ratio"] == pytest.approx(1.0)
    assert "(default)" in proc.stdout


def test_hypertune_objective_lines(tmp_path):
    """The program prints hypertune's @hypertune line and a latency: minimised."""
    proc, out = tune([], tmp_path, program=[WORKLOAD, "threads", "--hypertune"])
    assert proc.returncode == 0, proc.stderr
    doc = result(out)
    assert doc["objective"] == {"name": "latency (ms)", "higher_is_better": False}
    # An instance's latency is lowest with the most threads: one instance on every core.
    knobs = best_row(out)["config"]
    assert knobs["split"].startswith("1x") and knobs["allocator"] == "jemalloc"
    assert knobs["omp"] == "intel" and knobs["kmp_blocktime"] == "0"


def test_wall_time_is_the_default_objective(tmp_path):
    proc, out = tune(["--max-trials", "2", "--no-python"], tmp_path,
                     program=["/bin/sleep", "0.2"])
    assert proc.returncode == 0, proc.stderr
    doc = result(out)
    assert doc["objective"] == {"name": "seconds", "higher_is_better": False}
    assert all(0.2 <= t["value"] < 10 for t in doc["trials"])


def test_hypertune_conf_file(tmp_path):
    conf = tmp_path / "conf.yaml"
    conf.write_text("tuning:\n  strategy: grid\n  max_trials: 100\n"
                    "output_dir: %s\n"
                    "hyperparams:\n  launcher:\n"
                    "    hp: ['ncore_per_instance', 'malloc']\n"
                    "    ncore_per_instance: all_physical_cores\n" % (tmp_path / "hyper"))
    command = [pinfer_path(), "tune", "--conf", str(conf), "--metric", METRIC, "--",
               WORKLOAD, "threads"]
    proc = subprocess.run(command, capture_output=True, text=True, env=env(), timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "hyper"
    trials = result(out)["trials"]
    # grid over ncore_per_instance (1..physical cores) x malloc (tc, je, pt), the rest fixed
    cores = len({c for c in allowed_cpus()})
    assert len(trials) <= 3 * cores
    assert {t["config"]["allocator"] for t in trials} == {"tcmalloc", "jemalloc", "default"}
    assert {t["config"]["omp"] for t in trials} == {"intel"}


def test_a_crashing_trial_is_recorded_and_tuning_goes_on(tmp_path):
    proc, out = tune(["--metric", METRIC, "--strategy", "grid"], tmp_path,
                     program=[WORKLOAD, "crash"])
    assert proc.returncode == 0, proc.stderr
    statuses = [t["status"] for t in result(out)["trials"]]
    assert any("exited with status 3" in s for s in statuses), statuses
    assert any(s == "ok" for s in statuses)
    assert best_row(out)["config"]["allocator"] != "jemalloc"


def test_a_hanging_trial_times_out(tmp_path):
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"allocator": ["default", "tcmalloc"], "omp": ["default"],
                                 "kmp_blocktime": ["1"]}))
    proc, out = tune(["--metric", METRIC, "--strategy", "grid", "--timeout", "2",
                      "--space", str(space)], tmp_path, program=[WORKLOAD, "hang"])
    assert proc.returncode == 0, proc.stderr
    statuses = [t["status"] for t in result(out)["trials"]]
    assert any(s.startswith("timeout") for s in statuses), statuses


def test_resume_does_not_run_recorded_trials_again(tmp_path):
    proc, out = tune(["--metric", METRIC, "--strategy", "grid", "--max-trials", "3"], tmp_path,
                     program=[WORKLOAD, "threads"])
    assert proc.returncode == 0, proc.stderr
    first = record(out)
    logs = set(os.listdir(out / "logs"))
    proc, out = tune(["--metric", METRIC, "--strategy", "grid", "--max-trials", "5",
                      "--resume"], tmp_path, program=[WORKLOAD, "threads"])
    assert proc.returncode == 0, proc.stderr
    second = record(out)
    assert len(second) == 5 and second[:3] == first, (first, second)
    assert "(3 resumed)" in proc.stdout
    assert len(set(os.listdir(out / "logs")) - logs) == 2  # two new trials ran


def test_a_tie_is_called_a_tie(tmp_path):
    proc, out = tune(["--metric", METRIC, "--max-trials", "3"], tmp_path,
                     program=[WORKLOAD, "flat"])
    assert proc.returncode == 0, proc.stderr
    assert "tie: " in proc.stdout
    assert result(out)["winner"] is False


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """tiny.pt: average pooling + a 3 -> 10 linear layer, traced (TorchScript)."""
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    code = ("import torch\n"
            "net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),"
            " torch.nn.Linear(3, 10)).eval()\n"
            "torch.jit.trace(net, torch.rand(1, 3, 224, 224)).save(%r)\n" % str(path))
    subprocess.run([PYTHON, "-c", code], check=True, timeout=120)
    return path


def test_serve_batch_sizes_under_load(tiny_model, tmp_path):
    """--serve: each trial a pinfer serve under the built-in load; the batch size tuned."""
    space = tmp_path / "space.yaml"
    space.write_text("allocator: [default]\nomp: [default]\nbatch_size: [1, 4]\n"
                     "max_batch_delay: [5]\nsplit: [%dx1]\n" % min(2, len(allowed_cpus())))
    proc, out = tune(["--serve", str(tiny_model), "--handler", "image_classifier",
                      "--duration", "1", "--warmup", "0", "--space", str(space),
                      "--python", PYTHON], tmp_path)
    assert proc.returncode == 0, proc.stderr
    trials = result(out)["trials"]
    assert {t["config"]["batch_size"] for t in trials} == {"1", "4"}
    assert all(t["status"] == "ok" and t["value"] > 0 for t in trials)
    assert result(out)["objective"]["name"] == "req/s"
    assert "pinfer serve --workers" in proc.stdout and "--model-store" in proc.stdout


def test_serve_slo_fails_trials(tiny_model, tmp_path):
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"allocator": ["default"], "omp": ["default"],
                                 "batch_size": [1], "max_batch_delay": [5]}))
    proc, out = tune(["--serve", str(tiny_model), "--handler", "image_classifier",
                      "--duration", "1", "--warmup", "0", "--space", str(space),
                      "--slo-p99", "0.001", "--python", PYTHON], tmp_path)
    assert proc.returncode == 1  # no trial met the SLO
    assert all("above the SLO" in t["status"] for t in result(out)["trials"])


# ---- bad input ----------------------------------------------------------------


def test_empty_space(tmp_path):
    space = tmp_path / "space.json"
    space.write_text('{"split": ["64x64"]}')
    proc, _ = tune(["--metric", METRIC, "--space", str(space)], tmp_path,
                   program=[WORKLOAD, "threads"])
    assert proc.returncode == 2
    assert "the space is empty" in proc.stderr


def test_metric_that_never_matches(tmp_path):
    proc, out = tune(["--metric", r"([0-9.]+) widgets/s"], tmp_path,
                     program=[WORKLOAD, "threads"])
    assert proc.returncode == 2
    line = [l for l in proc.stderr.splitlines() if l.startswith("pinfer: error:")]
    assert len(line) == 1 and "matches nothing the program printed" in line[0]


def test_conf_with_an_unknown_key(tmp_path):
    conf = tmp_path / "conf.yaml"
    conf.write_text("tuning:\n  strategy: grid\n  max_trails: 3\nhyperparams:\n"
                    "  launcher:\n    hp: ['malloc']\n")
    proc, _ = tune(["--conf", str(conf), "--metric", METRIC], tmp_path,
                   program=[WORKLOAD, "threads"])
    assert proc.returncode == 2
    assert "max_trails" in proc.stderr and ":3:" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_budget_too_small_for_one_trial(tmp_path):
    proc, _ = tune(["--metric", METRIC, "--budget", "0.001"], tmp_path,
                   program=[WORKLOAD, "threads"])
    assert proc.returncode == 2
    assert "too small for one trial" in proc.stderr


@pytest.mark.parametrize("args,message", [
    ([], "give -- PROGRAM"),
    (["--serve", "builtin", "--metric", "(x)"], "--metric is for a PROGRAM"),
    (["--strategy", "hill"], "not one of auto, grid, random"),
    (["--repeat", "0"], "--repeat"),
    (["--minimize", "--", "/bin/true"], "--minimize goes with --metric"),
    (["--slo-p99", "10", "--", "/bin/true"], "--slo-p99 is for --serve"),
])
def test_usage_errors(args, message, tmp_path):
    proc = subprocess.run([pinfer_path(), "tune"] + args, capture_output=True, text=True,
                          env=env(), timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
