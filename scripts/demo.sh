#!/usr/bin/env bash
# The main job on this machine: set up, build, then show the machine and the
# plans pinfer makes for it (and for a 2-socket server, from a fixture).
#
#   bash scripts/demo.sh
set -eu
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make -j2 build/pinfer >/dev/null
pinfer=build/pinfer
show() {
    echo
    echo "\$ pinfer $*"
    "$pinfer" "$@"
}
show topo
show plan -- demo.py
show plan --ninstances 2 --no-python -- ./serve --port 8080
show plan --ninstances 2 --json --no-python -- ./serve
echo
echo "A 2-socket, 4-cores-per-socket, 2-threads-per-core server (tests/fixtures/worked16.lscpu):"
show plan --topology tests/fixtures/worked16.lscpu --ncores-per-instance 3 --bind-numa-node
show plan --topology tests/fixtures/worked16.lscpu --throughput-mode
