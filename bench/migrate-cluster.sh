#!/bin/bash
# Live migrations through a real 3-node test cluster (corosync, vmclusterd,
# the agents), the image-lock handover through CPG included: how long
# `clusterctl move-vm --wait` takes, and the downtime QEMU measured on the
# source (from the pause at pre-switchover, through the lock handover, to
# the end), for the test guest dirtying 0 and 64 MiB/s, encrypted and not.
# bench/migrate.sh measures the agents alone against QEMU direct and TLS;
# the difference in downtime between the two is the cost of the handover.
#
#   bench/migrate-cluster.sh [ROUNDS]        (default 5 moves per cell)
#
# Prints figures; never fails on timing. Needs root and network namespaces.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export VMC_BUILDDIR=${VMC_BUILDDIR:-$top/build}
. "$top/tests/cluster/harness.sh"
. "$top/tests/cluster/assert.sh"
harness_require_root_netns
rounds=${1:-5}

export VMC_DAEMON_ARGS="--vm-memory=2048 --stop-timeout=2"
guest_cluster_up 3
node_exec 1 clusterctl cluster set accel=tcg fence_method=none >/dev/null

# downtimes NODE VM: the downtimes node NODE's daemon logged for VM, one per line
downtimes() { { grep -o "vm $2: migration [0-9a-f]* to node[0-9]*: the source sent it all; downtime [0-9-]* ms" \
	"$(node_dir "$1")/log/vmclusterd.log" || true; } | awk '{print $(NF-1)}'; }
stats() { sort -n | awk '{ a[NR] = $1 } END { if (NR) printf "%s (%s-%s)", a[int((NR + 1) / 2)], a[1], a[NR]; else printf "-" }'; }

printf '%-8s %-9s %6s %22s %22s\n' "dirty" "stream" "moves" "downtime ms med (min-max)" "move-vm ms med (min-max)"
for rate in 0 64; do
	vm=b$rate
	guest_vm_args "$vm" node1 "vmc.dirty_mib_s=$rate vmc.buffer_mib=160" |
		sed 's/"memory_mib":128/"memory_mib":256/' | node_exec 1 clusterctl vm add - --start --wait >/dev/null
	wait_for 30 "$vm counting" counter_above 1 "$vm" 10
	for enc in on off; do
		node_exec 1 clusterctl migration set encrypt=$enc >/dev/null
		: >"$HARNESS_RUNDIR/took"
		before1=$(downtimes 1 "$vm" | wc -l) before2=$(downtimes 2 "$vm" | wc -l)
		for ((r = 0; r < rounds; r++)); do
			to=node2
			[[ $(node_exec 1 clusterctl --json vm show "$vm" | jq -r .owner) == node2 ]] && to=node1
			t0=$(date +%s%3N)
			node_exec 3 clusterctl --timeout 120 move-vm "$vm" "$to" --wait >/dev/null
			echo $(($(date +%s%3N) - t0)) >>"$HARNESS_RUNDIR/took"
		done
		down=$({ downtimes 1 "$vm" | tail -n +"$((before1 + 1))"; downtimes 2 "$vm" | tail -n +"$((before2 + 1))"; } | stats)
		printf '%-8s %-9s %6s %22s %22s\n' "$rate MiB/s" "$([[ $enc == on ]] && echo sealed || echo plain)" "$rounds" \
			"$down" "$(stats <"$HARNESS_RUNDIR/took")"
	done
	node_exec 1 clusterctl vm stop "$vm" --wait >/dev/null
done
echo "(256 MiB test guest under TCG; move-vm from node3, so its time includes the CPG round trips and the polling of --wait)"
cluster_down
