#!/bin/bash
# Cluster core benchmark (prints figures; never passes or fails on time).
# On a 3-node cluster of real corosync nodes in namespaces:
#   - vm add throughput through the cluster: GROUPS adds pipelined from one
#     node (window 16), then GROUPS more from all three nodes at once, then
#     200 one-at-a-time `clusterctl vm add` commands, each timed (p50/p99 of
#     a single acknowledged add)
#   - with GROUPS groups in the cluster: clusterctl status latency p50/p99
#     (the whole command, fork to exit, timed inside the node) and
#     vmclusterd's resident memory on each node
# Usage: bench/cluster-core.sh [GROUPS]   (root; VMC_BUILDDIR as for tests; default 1000)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export VMC_BUILDDIR=${VMC_BUILDDIR:-$top/build}
. "$top/tests/cluster/harness.sh"
. "$top/tests/cluster/assert.sh"
harness_require_root_netns
groups=${1:-1000}
load=$VMC_BUILDDIR/bench/vmc-load

cluster_up 3
for i in 1 2 3; do wait_for 30 "node $i quorate" node_sees "$i" 3 true; done
echo "corosync token in force: $(node_exec 1 corosync-cmapctl -g runtime.config.totem.token | awk '{print $NF}') ms"

echo "== vm add throughput: $groups adds pipelined (window 16) from node 1"
node_exec 1 "$load" --adds-only --count "$groups" --window 16 --prefix one
wait_for 60 "digests to agree" nodes_agree 1 2 3
echo "groups in the cluster: $(vm_count 2)"

echo "== clusterctl status latency on node 2 with $groups groups (300 calls)"
# shellcheck disable=SC2016
node_exec 2 bash -c 'for k in $(seq 1 300); do s=$(date +%s%N); clusterctl status >/dev/null; e=$(date +%s%N); echo $(((e - s) / 1000)); done' |
	sort -n >"$HARNESS_RUNDIR/lat"
awk '{ a[NR] = $1 } END { printf "status latency: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", a[int(NR * 0.5)] / 1000, a[int(NR * 0.99)] / 1000, a[NR] / 1000 }' "$HARNESS_RUNDIR/lat"
s=$(date +%s%N)
node_exec 3 clusterctl --json vm list >/dev/null
e=$(date +%s%N)
echo "vm list --json of $groups groups: $(((e - s) / 1000000)) ms"

echo "== vmclusterd resident memory with $groups groups"
for i in 1 2 3; do
	pid=$(node_pid_of "$i" vmclusterd)
	echo "node $i: VmRSS $(awk '/VmRSS/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$pid/status"), VmHWM $(awk '/VmHWM/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$pid/status")"
done

echo "== vm add throughput: $groups more from all three nodes at once (window 16 each)"
third=$((groups / 3))
for i in 1 2 3; do
	node_exec "$i" "$load" --adds-only --count "$third" --window 16 --prefix "all$i" >"$HARNESS_RUNDIR/load$i.out" &
done
start=$(date +%s.%N)
wait
end=$(date +%s.%N)
cat "$HARNESS_RUNDIR"/load?.out
awk -v n=$((third * 3)) -v s="$start" -v e="$end" 'BEGIN { printf "all three together: %d adds in %.2f s: %.0f adds/s\n", n, e - s, n / (e - s) }'

echo "== clusterctl vm add, one command at a time (fork, connect, wait for the verdict), 200 adds"
# Each add timed inside the node: the latency of one acknowledged change.
# shellcheck disable=SC2016
node_exec 2 bash -c 'for k in $(seq 1 200); do s=$(date +%s%N); printf "{\"name\":\"cli%s\",\"memory_mib\":64,\"boot\":{\"kernel\":\"/k\"}}" $k | clusterctl vm add - >/dev/null; e=$(date +%s%N); echo $(((e - s) / 1000)); done' >"$HARNESS_RUNDIR/adds"
sort -n "$HARNESS_RUNDIR/adds" | awk '{ a[NR] = $1; t += $1 } END { printf "clusterctl vm add: %.1f ms each on average, %.0f adds/s; single add latency p50 %.2f ms, p99 %.2f ms\n", t / NR / 1000, NR * 1e6 / t, a[int(NR * 0.5)] / 1000, a[int(NR * 0.99)] / 1000 }'
