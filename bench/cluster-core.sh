#!/bin/bash
# Cluster core benchmark (prints figures; never passes or fails on time).
# On a 3-node cluster of real corosync nodes in namespaces, with 1000 groups:
#   - vm add throughput through the cluster (pipelined from one node, then
#     from all three at once)
#   - clusterctl status latency p50/p99 (the whole command, fork to exit)
#   - vmclusterd resident memory on each node
# Usage: bench/cluster-core.sh [GROUPS]   (run as root; VMC_BUILDDIR as for tests)
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
echo "corosync token: $(node_exec 1 corosync-cmapctl -g runtime.config.totem.token | awk '{print $NF}') ms"

echo "== vm add throughput, $groups adds pipelined (window 16) from node 1"
node_exec 1 "$load" --adds-only --count "$groups" --window 16 --prefix one
echo "== vm add throughput, $groups adds from all three nodes at once (window 16 each)"
third=$((groups / 3))
for i in 1 2 3; do
	node_exec "$i" "$load" --adds-only --count "$third" --window 16 --prefix "all$i" >"$HARNESS_RUNDIR/load$i.out" &
done
start=$(date +%s.%N)
wait
end=$(date +%s.%N)
cat "$HARNESS_RUNDIR"/load?.out
awk -v n=$((third * 3)) -v s="$start" -v e="$end" 'BEGIN { printf "all three together: %d adds in %.2f s: %.0f adds/s\n", n, e - s, n / (e - s) }'
echo "== vm add one at a time with clusterctl (fork, connect, wait for the verdict), 100 adds"
start=$(date +%s.%N)
for k in $(seq 1 100); do vm_add_on 2 "cli$k"; done
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" 'BEGIN { printf "clusterctl vm add: %.1f ms each, %.0f adds/s\n", (e - s) * 10, 100 / (e - s) }'

wait_for 60 "digests to agree" nodes_agree 1 2 3
echo "groups in the cluster: $(vm_count 1)"

echo "== clusterctl status latency, 300 calls on node 2"
for k in $(seq 1 300); do
	s=$(date +%s%N)
	node_exec 2 clusterctl status >/dev/null
	e=$(date +%s%N)
	echo $(((e - s) / 1000))
done | sort -n >"$HARNESS_RUNDIR/lat"
awk '{ a[NR] = $1 } END { printf "status latency: p50 %.1f ms, p99 %.1f ms, max %.1f ms (includes nsenter)\n", a[int(NR * 0.5)] / 1000, a[int(NR * 0.99)] / 1000, a[NR] / 1000 }' "$HARNESS_RUNDIR/lat"
echo "== clusterctl vm list --json on node 3"
s=$(date +%s%N)
node_exec 3 clusterctl --json vm list >/dev/null
e=$(date +%s%N)
echo "vm list --json: $(((e - s) / 1000000)) ms"

echo "== vmclusterd resident memory"
for i in 1 2 3; do
	pid=$(node_pid_of "$i" vmclusterd)
	echo "node $i: $(awk '/VmRSS/ { print $2 / 1024 " MiB" }' "/proc/$pid/status") (VmHWM $(awk '/VmHWM/ { print $2 / 1024 " MiB" }' "/proc/$pid/status"))"
done
