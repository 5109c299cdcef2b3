#!/bin/bash
# Draining a node of 8 test guests (three idle, three dirtying 64 MiB/s,
# two 256 MiB/s) through a real 3-node test cluster, with a fixed limit of
# 1, 2, 4 and 8 live migrations at once and with the adaptive limit (cap
# 8), in one run: the drain's total time (clusterctl node drain --wait)
# and the worst downtime of any VM (what QEMU measured on the source),
# then `node resume --failback immediate --wait` for the same 8.
#
#   bench/drain.sh [ROUNDS]        (default 1 drain per limit)
#
# Prints a table; never fails on timing. Needs root and network namespaces.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export VMC_BUILDDIR=${VMC_BUILDDIR:-$top/build}
. "$top/tests/cluster/harness.sh"
. "$top/tests/cluster/assert.sh"
harness_require_root_netns
rounds=${1:-1}

export VMC_DAEMON_ARGS="--vm-memory=1024 --stop-timeout=2"
guest_cluster_up 3
node_exec 1 clusterctl cluster set accel=tcg fence_method=none >/dev/null

vms=()
add() { # NAME RATE
	guest_vm_args "$1" node1 "vmc.dirty_mib_s=$2 vmc.buffer_mib=48" | node_exec 1 clusterctl vm add - --start --wait >/dev/null
	vms+=("$1")
}
for k in 1 2 3; do add "idle$k" 0; done
for k in 1 2 3; do add "d64_$k" 64; done
for k in 1 2; do add "d256_$k" 256; done
for vm in "${vms[@]}"; do wait_for 60 "$vm counting" counter_above 1 "$vm" 10; done

# downtimes_since LINES...: the downtimes node1 logged after line N (one per line)
log1=$(node_dir 1)/log/vmclusterd.log
downtimes_since() { tail -n +"$(($1 + 1))" "$log1" | { grep -o "the source sent it all; downtime [0-9-]* ms" || true; } | awk '{print $(NF-1)}'; }
all_home() { local vm; for vm in "${vms[@]}"; do vm_online_on "$vm" node1 2 || return 1; done; }
now_ms() { date +%s%3N; }

printf '%-10s %6s %14s %18s %10s %16s\n' "limit" "drains" "drain s (med)" "worst downtime ms" "moved" "resume s (med)"
for limit in 1 2 4 8 adaptive; do
	if [[ $limit == adaptive ]]; then
		node_exec 1 clusterctl migration set max_parallel=8 adaptive=on >/dev/null
	else
		node_exec 1 clusterctl migration set max_parallel="$limit" adaptive=off >/dev/null
	fi
	: >"$HARNESS_RUNDIR/drain" && : >"$HARNESS_RUNDIR/resume" && : >"$HARNESS_RUNDIR/down"
	moved=0
	for ((r = 0; r < rounds; r++)); do
		mark=$(wc -l <"$log1")
		t0=$(now_ms)
		node_exec 2 clusterctl --timeout 900 node drain node1 --wait >/dev/null 2>&1 || echo "drain with limit $limit failed" >&2
		echo "$(($(now_ms) - t0))" >>"$HARNESS_RUNDIR/drain"
		downtimes_since "$mark" >>"$HARNESS_RUNDIR/down"
		moved=$((moved + $(downtimes_since "$mark" | wc -l)))
		t0=$(now_ms)
		node_exec 2 clusterctl --timeout 900 node resume node1 --failback immediate --wait >/dev/null 2>&1 ||
			echo "resume with limit $limit failed" >&2
		wait_for 300 "all eight back on node1" all_home || echo "not all back on node1 after limit $limit" >&2
		echo "$(($(now_ms) - t0))" >>"$HARNESS_RUNDIR/resume"
	done
	med() { sort -n "$1" | awk '{ a[NR] = $1 } END { if (NR) printf "%.1f", a[int((NR + 1) / 2)] / 1000; else printf "-" }'; }
	worst=$(sort -n "$HARNESS_RUNDIR/down" | tail -1)
	printf '%-10s %6s %14s %18s %10s %16s\n' "$limit" "$rounds" "$(med "$HARNESS_RUNDIR/drain")" "${worst:--}" \
		"$moved/$((8 * rounds))" "$(med "$HARNESS_RUNDIR/resume")"
done
echo "(128 MiB test guests under TCG, 3 idle, 3 dirtying 64 MiB/s, 2 dirtying 256 MiB/s; drains asked from node2;"
echo " 'moved' counts the live moves off node1 that logged a downtime; resume includes waiting for all eight home)"
grep -o "live migrations out of it at once: [0-9]* now ([^)]*)" "$log1" | sort | uniq -c | sort -rn | head -5 |
	sed 's/^/adaptive window on node1: /'
cluster_down
