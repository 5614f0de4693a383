#!/usr/bin/env bash
# Install the Debian packages pinfer needs to build, test and run its demo,
# only those missing (apt-get update only when something is).  Debian 12, root.
#
#   bash scripts/setup.sh           what building and the demo need
#   bash scripts/setup.sh --test    and what only the tests need (scripts/test.sh):
#                                   chromium, which renders `pinfer bench`'s report.html
set -eu
packages=(
    build-essential pkg-config make clang clang-format libclang-rt-14-dev
    libhwloc-dev hwloc libudev-dev libcmocka-dev libjansson-dev libyaml-dev
    libgoogle-perftools-dev libjemalloc-dev libomp-dev numactl
    libmicrohttpd-dev libzip-dev apache2-utils wrk curl tmux
    python3 python3-pytest python3-requests python3-pil python3-fastapi python3-uvicorn
    python3-dev python3-torch python3-torchvision python3-numpy
    python3-pip python3-setuptools python3-venv python3-yaml
)
test_packages=(chromium)
for arg in "$@"; do
    case $arg in
    --test) packages+=("${test_packages[@]}") ;;
    *)
        echo "setup: error: unknown argument '$arg' (usage: setup.sh [--test])" >&2
        exit 2
        ;;
    esac
done
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: error: run as root to install packages (or install them: ${missing[*]})" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
fi
echo "setup: all packages present"
