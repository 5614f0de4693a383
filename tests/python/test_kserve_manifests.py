"""The KServe manifests of deploy/kserve (docs/kserve.md): each YAML document parses and is
of a kind this project ships; the pods they make are in the Guaranteed QoS class with a
whole number of CPUs (what the kubelet's static CPU manager policy needs to give exclusive
cores); the probes ask for paths docs/kserve.md names; the kubelet snippet sets the static
policy with full-pcpus-only; and every option the container passes to `pinfer serve` is
one that `pinfer serve --help` lists.  No cluster is needed: these check the files."""
import fractions
import glob
import os
import re
import subprocess
import urllib.parse

import pytest
import yaml

from conftest import ROOT

DEPLOY = os.path.join(ROOT, "deploy", "kserve")
DOC = os.path.join(ROOT, "docs", "kserve.md")

# (kind, apiVersion) of every document deploy/kserve may hold.
KINDS = {
    ("ClusterServingRuntime", "serving.kserve.io/v1alpha1"),
    ("InferenceService", "serving.kserve.io/v1beta1"),
    ("KubeletConfiguration", "kubelet.config.k8s.io/v1beta1"),
}

# Kubernetes resource quantities: suffix -> multiplier.
SUFFIXES = {
    "": 1, "m": fractions.Fraction(1, 1000),
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}


def quantity(value):
    """A Kubernetes quantity ("8", 8, "500m", "16Gi", "1.5") as an exact Fraction."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("%r is not a quantity" % (value,))
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([a-zA-Z]*)", str(value))
    if not m or m.group(2) not in SUFFIXES:
        raise ValueError("%r is not a quantity" % (value,))
    return fractions.Fraction(m.group(1)) * SUFFIXES[m.group(2)]


def yaml_files():
    return sorted(glob.glob(os.path.join(DEPLOY, "*.yaml")) +
                  glob.glob(os.path.join(DEPLOY, "*.yml")))


def documents():
    """[(file name, document)] of every YAML document in deploy/kserve."""
    out = []
    for path in yaml_files():
        with open(path, encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                assert isinstance(doc, dict), "%s: a document that is not a mapping" % path
                out.append((os.path.basename(path), doc))
    return out


def of_kind(kind):
    found = [(name, doc) for name, doc in documents() if doc.get("kind") == kind]
    assert found, "deploy/kserve has no %s" % kind
    return found


def runtime():
    """The ClusterServingRuntime named pinfer."""
    found = [doc for _, doc in of_kind("ClusterServingRuntime")
             if doc["metadata"]["name"] == "pinfer"]
    assert len(found) == 1, "one ClusterServingRuntime named pinfer"
    return found[0]


def runtime_container():
    containers = runtime()["spec"]["containers"]
    assert [c["name"] for c in containers] == ["kserve-container"]
    return containers[0]


def options(args):
    """{option: value} of an argument list: "--opt value" and "--opt=value"; a flag
    followed by another option (or nothing) has the value None."""
    out, i = {}, 0
    while i < len(args):
        word = str(args[i])
        if word.startswith("--"):
            name, eq, value = word.partition("=")
            if not eq:
                value = None
                if i + 1 < len(args) and not str(args[i + 1]).startswith("--"):
                    value = str(args[i + 1])
                    i += 1
            out[name] = value
        i += 1
    return out


def resource_blocks():
    """[(where, resources)] of every container of the runtime and every model of an
    InferenceService (whose resources replace the runtime's)."""
    out = []
    for name, doc in documents():
        if doc["kind"] == "ClusterServingRuntime":
            for c in doc["spec"]["containers"]:
                out.append(("%s: container %s" % (name, c["name"]), c.get("resources")))
        elif doc["kind"] == "InferenceService":
            model = doc["spec"]["predictor"]["model"]
            if "resources" in model:
                out.append(("%s: predictor model" % name, model["resources"]))
    return out


def doc_text():
    with open(DOC, encoding="utf-8") as f:
        return f.read()


# ---- the files --------------------------------------------------------------------


def test_every_document_is_a_known_kind():
    assert yaml_files(), "no YAML in deploy/kserve"
    seen = set()
    for name, doc in documents():
        key = (doc.get("kind"), doc.get("apiVersion"))
        assert key in KINDS, "%s: unexpected kind/apiVersion %r" % (name, key)
        seen.add(key)
    assert seen == KINDS, "missing: %r" % (KINDS - seen)


def test_the_docs_name_every_file():
    text = doc_text()
    for path in yaml_files():
        rel = os.path.relpath(path, ROOT)
        assert rel in text, "docs/kserve.md does not name %s" % rel


# ---- Guaranteed QoS -----------------------------------------------------------------


def test_cpu_requests_equal_limits_and_are_whole():
    blocks = resource_blocks()
    assert blocks
    for where, res in blocks:
        assert res, "%s: no resources (the pod would not be Guaranteed)" % where
        req, lim = res.get("requests", {}), res.get("limits", {})
        assert "cpu" in req and "cpu" in lim, "%s: CPU request and limit" % where
        assert quantity(req["cpu"]) == quantity(lim["cpu"]), \
            "%s: CPU request %r != limit %r" % (where, req["cpu"], lim["cpu"])
        cpus = quantity(lim["cpu"])
        assert cpus > 0 and cpus.denominator == 1, \
            "%s: CPU %r is not a whole number (no exclusive CPUs)" % (where, lim["cpu"])


def test_memory_requests_equal_limits():
    for where, res in resource_blocks():
        req, lim = res.get("requests", {}), res.get("limits", {})
        assert "memory" in req and "memory" in lim, "%s: memory request and limit" % where
        assert quantity(req["memory"]) == quantity(lim["memory"]), \
            "%s: memory request %r != limit %r" % (where, req["memory"], lim["memory"])
        assert quantity(lim["memory"]) > 0


def test_quantity_reader():
    assert quantity("8") == 8 and quantity(8) == 8 and quantity("8000m") == 8
    assert quantity("500m") == fractions.Fraction(1, 2) and quantity("1.5") == 1.5
    assert quantity("16Gi") == 16 * 2**30 and quantity("1G") == 10**9
    for bad in ("", "8 cpus", "1Gb", "-1", True, None):
        with pytest.raises(ValueError):
            quantity(bad)


# ---- the runtime ----------------------------------------------------------------------


def test_runtime_formats_and_protocols():
    spec = runtime()["spec"]
    formats = {f["name"] for f in spec["supportedModelFormats"]}
    assert {"pytorch", "torchserve"} <= formats
    for f in spec["supportedModelFormats"]:
        assert "version" not in f or isinstance(f["version"], str), \
            "format %s: a version is a string" % f["name"]
    assert sorted(spec["protocolVersions"]) == ["v1", "v2"]


def test_runtime_serves_the_store_on_the_expected_addresses():
    c = runtime_container()
    assert c["command"] == ["pinfer"] and c["args"][0] == "serve"
    opts = options(c["args"][1:])
    assert opts["--model-store"] == "/mnt/models"
    assert opts["--models"] == "all"
    inference = urllib.parse.urlsplit(opts["--inference-address"])
    management = urllib.parse.urlsplit(opts["--management-address"])
    metrics = urllib.parse.urlsplit(opts["--metrics-address"])
    assert (inference.hostname, inference.port) == ("0.0.0.0", 8080)
    assert (management.hostname, management.port) == ("127.0.0.1", 8081), \
        "the management API stays on loopback"
    assert (metrics.hostname, metrics.port) == ("0.0.0.0", 8082)
    assert [p["containerPort"] for p in c["ports"]] == [8080]


def test_probes_use_the_documented_paths():
    c = runtime_container()
    documented = set(re.findall(r"/v2/health/[a-z]+", doc_text()))
    ready, live = c["readinessProbe"]["httpGet"], c["livenessProbe"]["httpGet"]
    assert ready["path"] == "/v2/health/ready" and live["path"] == "/v2/health/live"
    for probe in (ready, live):
        assert probe["path"] in documented, "docs/kserve.md does not name %s" % probe["path"]
        assert probe["port"] == 8080, "probes go to the inference address"


def test_prometheus_annotations():
    ann = runtime()["spec"]["annotations"]
    for key, value in ann.items():
        assert isinstance(value, str), "annotation %s: %r is not a string" % (key, value)
    metrics_port = urllib.parse.urlsplit(
        options(runtime_container()["args"][1:])["--metrics-address"]).port
    assert ann["prometheus.io/scrape"] == "true"
    assert ann["prometheus.io/port"] == ann["prometheus.kserve.io/port"] == str(metrics_port)
    assert ann["prometheus.io/path"] == ann["prometheus.kserve.io/path"] == "/metrics"


# ---- the example InferenceService ---------------------------------------------------------


def test_inference_service_uses_the_runtime():
    spec = runtime()["spec"]
    formats = {f["name"] for f in spec["supportedModelFormats"]}
    text = doc_text()
    for name, doc in of_kind("InferenceService"):
        model = doc["spec"]["predictor"]["model"]
        assert model["runtime"] == "pinfer", name
        assert model["modelFormat"]["name"] in formats, name
        assert model.get("protocolVersion", "v1") in spec["protocolVersions"], name
        assert model["storageUri"].startswith("pvc://"), name
        assert model["storageUri"] in text, \
            "docs/kserve.md does not say what to put for %s" % model["storageUri"]
        for key, value in doc["metadata"].get("annotations", {}).items():
            assert isinstance(value, str), "annotation %s: %r is not a string" % (key, value)


# ---- the kubelet ------------------------------------------------------------------------


def test_kubelet_static_policy_with_full_cores():
    for name, doc in of_kind("KubeletConfiguration"):
        assert doc["cpuManagerPolicy"] == "static", name
        # A map of strings: an unquoted true is a YAML boolean the kubelet refuses.
        assert doc["cpuManagerPolicyOptions"] == {"full-pcpus-only": "true"}, name
        reserved = doc["reservedSystemCPUs"]
        assert isinstance(reserved, str) and \
            re.fullmatch(r"[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*", reserved), \
            "%s: reservedSystemCPUs %r is not a CPU list" % (name, reserved)
        assert doc.get("topologyManagerPolicy", "none") in \
            ("none", "best-effort", "restricted", "single-numa-node"), name


# ---- the command line ------------------------------------------------------------------


def test_args_are_options_of_pinfer_serve():
    """Every --option given to pinfer serve, by the runtime and by an InferenceService
    (whose args KServe appends), is one `pinfer serve --help` lists."""
    used = set(options(runtime_container()["args"][1:]))
    for _, doc in of_kind("InferenceService"):
        used |= set(options(doc["spec"]["predictor"]["model"].get("args", [])))
    assert "--model-store" in used
    binary = os.path.join(ROOT, "build", "pinfer")
    if not os.access(binary, os.X_OK):
        pytest.skip("%s is not built: run make (the options are checked against its "
                    "`serve --help`)" % os.path.relpath(binary, ROOT))
    proc = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True,
                          timeout=60)
    if proc.returncode != 0 and "unknown command" in proc.stderr:
        pytest.skip("build/pinfer does not know `serve` yet: %s" % proc.stderr.strip())
    assert proc.returncode == 0, "pinfer serve --help failed:\n" + proc.stdout + proc.stderr
    listed = {o.replace("_", "-") for o in
              re.findall(r"(?<![\w-])(--[A-Za-z0-9][A-Za-z0-9_-]*)", proc.stdout)}
    unknown = sorted(o for o in used if o.replace("_", "-") not in listed)
    assert not unknown, "pinfer serve --help does not list %s" % ", ".join(unknown)
