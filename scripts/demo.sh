#!/usr/bin/env bash
# The main job on a built-in workload: set up, build, show the machine, then run the
# case study's experiment with `pinfer bench`: a pinfer serve server with one worker per
# physical core (at most 4) serving torchvision's ResNet-18 (random weights: nothing is
# downloaded) under the same load in three configurations - default (unbound, a thread
# per physical core in every worker), threads (unbound, each worker its share of the
# cores) and pinned (pinfer's plan) - and print the table, the verdict and where the
# report (report.html, bench.json, bench.csv) is.  About two minutes on 2 cores.
#
#   bash scripts/demo.sh [pinfer bench OPTIONS]     (e.g. --duration 60, --arch resnet50)
set -eu
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make -j2 build/pinfer >/dev/null
# The workers are Python: Debian's interpreter (it has torch) and the package of python/.
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
export PINFER_PYTHON=${PINFER_PYTHON:-/usr/bin/python3}

echo
echo "\$ pinfer topo"
build/pinfer topo
echo
echo "\$ pinfer bench $*"
build/pinfer bench "$@"
