#!/usr/bin/env bash
# The main job on a built-in workload: set up, build, show the machine and the
# plan, then run the seed tutorials' experiment with pinfer-demo (OpenMP dense
# layers): N instances started naively (unpinned, each with OpenMP's default
# thread count: oversubscribed) against `pinfer run --ninstances N` (pinned,
# one core each, memory bound, tcmalloc and Intel OpenMP preloaded when found).
#
#   bash scripts/demo.sh            (PF_DEMO_SECONDS=5 to run longer)
set -eu
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make -j2 build/pinfer build/pinfer-demo >/dev/null
pinfer=build/pinfer
demo=build/pinfer-demo
seconds=${PF_DEMO_SECONDS:-3}
n=$(nproc)

echo
echo "\$ pinfer topo"
"$pinfer" topo
echo
echo "\$ pinfer plan --ninstances $n --no-python -- $demo"
"$pinfer" plan --ninstances "$n" --no-python -- "$demo"

sum() { awk '/inferences\/s/ { for (i = 1; i <= NF; i++) if ($(i+1) == "inferences/s") s += $i } END { printf "%.1f", s }'; }

echo
echo "== $n instances, unpinned, default OpenMP threads ($seconds s)"
unpinned_log=$(mktemp)
for _ in $(seq "$n"); do
    "$demo" --seconds "$seconds" >>"$unpinned_log" &
done
wait
cat "$unpinned_log"
echo
echo "== \$ pinfer run --ninstances $n --no-python $demo --seconds $seconds"
pinned_log=$(mktemp)
"$pinfer" run --ninstances "$n" --no-python "$demo" --seconds "$seconds" >"$pinned_log"
cat "$pinned_log"

unpinned=$(sum <"$unpinned_log")
pinned=$(sum <"$pinned_log")
rm -f "$unpinned_log" "$pinned_log"
echo
echo "unpinned: $unpinned inferences/s"
echo "pinned:   $pinned inferences/s"
awk -v p="$pinned" -v u="$unpinned" 'BEGIN { printf "ratio:    %.2fx (pinned / unpinned)\n", p / u }'
