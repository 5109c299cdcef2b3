#!/bin/bash
# Host-lease benchmark (prints figures; never passes or fails on time), on
# a 3-node cluster with the harness's watchdogs and lease_io_timeout_s=1:
#   1. the cost of leases with 4 volumes: I/O operations and bytes per
#      node per second of the lease threads (/proc/PID/task/TID/io of the
#      "lease:*" threads), and vmclusterd's CPU per second with 4 volumes
#      and with none, over the same quiet period;
#   2. a volume made to fail (EIO) on one node: the time until `volume
#      show` on another node says failing (RUNS times);
#   3. failover under lease fencing: a node with a VM powered off, the time
#      until the VM is online elsewhere, next to the lease timeout and to
#      corosync's detection of the loss (RUNS times).
# Usage: bench/leases.sh [RUNS] [SECONDS]   (root; VMC_BUILDDIR as for tests)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export VMC_BUILDDIR=${VMC_BUILDDIR:-$top/build}
. "$top/tests/cluster/harness.sh"
. "$top/tests/cluster/assert.sh"
harness_require_root_netns
runs=${1:-3}
quiet_s=${2:-30}
export HARNESS_WATCHDOG_MS=6000
export VMC_DAEMON_ARGS="--vm-memory=1024 --stop-timeout=2"

guest_cluster_up 3
node_exec 1 clusterctl cluster set accel=tcg lease_io_timeout_s=1 >/dev/null
now_ms() { date +%s%3N; }
ms_of_log_line() { date -d "$(cut -c1-19 <<<"$1")" +%s%3N; }
hz=$(getconf CLK_TCK)

# cpu_ticks NODE: utime + stime of the node's vmclusterd, all threads
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$(node_pid_of "$1" vmclusterd)/stat"; }
# lease_io NODE: "syscr syscw rchar wchar" summed over its lease threads
lease_io() {
	local pid task sums="0 0 0 0"
	pid=$(node_pid_of "$1" vmclusterd)
	for task in /proc/"$pid"/task/*; do
		[[ $(cat "$task/comm" 2>/dev/null) == lease:* ]] || continue
		sums=$(awk -v s="$sums" '
			/^rchar/ { r = $2 } /^wchar/ { w = $2 } /^syscr/ { sr = $2 } /^syscw/ { sw = $2 }
			END { split(s, a, " "); print a[1] + sr, a[2] + sw, a[3] + r, a[4] + w }' "$task/io")
	done
	echo "$sums"
}
quiet_cpu() { # -> "ticks on node 1 2 3" over quiet_s seconds
	local before after i
	before=$(for i in 1 2 3; do cpu_ticks "$i"; done | tr '\n' ' ')
	sleep "$quiet_s" # the measured period itself, not a synchronisation
	after=$(for i in 1 2 3; do cpu_ticks "$i"; done | tr '\n' ' ')
	paste -d' ' <(tr ' ' '\n' <<<"$before") <(tr ' ' '\n' <<<"$after") | awk 'NF == 2 { print $2 - $1 }' | tr '\n' ' '
}

# ---- 1. the cost of 4 volumes
echo "== 1. leases on 4 volumes, lease_io_timeout_s=1 (renewal every 2 s), ${quiet_s} s quiet"
cpu_none=$(quiet_cpu)
for k in 1 2 3 4; do
	mkdir -p "$HARNESS_RUNDIR/vol$k"
	node_exec 1 clusterctl volume add "vol$k" "$HARNESS_RUNDIR/vol$k" >/dev/null
done
healthy_all() {
	[[ $(node_exec 1 clusterctl --json volume list | jq '[.volumes[] | select(.healthy_on == 3)] | length') == 4 ]]
}
wait_for 60 "4 volumes healthy on 3 nodes" healthy_all
io_before=$(for i in 1 2 3; do lease_io "$i"; done)
cpu_vols=$(quiet_cpu)
io_after=$(for i in 1 2 3; do lease_io "$i"; done)
paste -d' ' <(echo "$io_before") <(echo "$io_after") | awk -v s="$quiet_s" '{
	printf "node%d: %.2f reads/s, %.2f writes/s, %.0f bytes read/s, %.0f bytes written/s\n",
		NR, ($5 - $1) / s, ($6 - $2) / s, ($7 - $3) / s, ($8 - $4) / s }'
read -ra none <<<"$cpu_none"
read -ra vols <<<"$cpu_vols"
for i in 0 1 2; do
	awk -v a="${none[$i]}" -v b="${vols[$i]}" -v hz="$hz" -v s="$quiet_s" -v n=$((i + 1)) \
		'BEGIN { printf "node%d: vmclusterd CPU %.2f ms/s without volumes, %.2f ms/s with 4 (%.2f ms/s for leases)\n",
			n, a * 1000 / hz / s, b * 1000 / hz / s, (b - a) * 1000 / hz / s }'
done

# ---- 2. a volume failing on one node
echo "== 2. EIO on node 2 until 'volume show' on node 1 says failing"
mkdir -p "$HARNESS_RUNDIR/failvol"
node_faultfs 2 "$HARNESS_RUNDIR/failvol"
node_exec 1 clusterctl volume add failvol "$HARNESS_RUNDIR/failvol" >/dev/null
health_on2() { node_exec 1 clusterctl --json volume show failvol | jq -r '.seen[] | select(.node == "node2") | .health'; }
is_health() { [[ $(health_on2) == "$1" ]]; }
wait_for 30 "failvol ok on node 2" is_health ok
for ((run = 1; run <= runs; run++)); do
	t0=$(now_ms)
	node_faultfs_mode 2 "$HARNESS_RUNDIR/failvol" eio
	wait_for 30 "failing on node 2" is_health failing
	echo "run $run: $(($(now_ms) - t0)) ms (renewal every 2000 ms)"
	node_faultfs_mode 2 "$HARNESS_RUNDIR/failvol" ok
	wait_for 30 "ok again on node 2" is_health ok
done

# ---- 3. failover under lease fencing
echo "== 3. power-off to the VM online elsewhere (lease timeout 14000 ms)"
truncate -s 1M "$HARNESS_RUNDIR/vol1/bench.img"
guest_vm_disk bench node1 "$HARNESS_RUNDIR/vol1/bench.img" ',"priority":"high"' |
	node_exec 1 clusterctl vm add - >/dev/null
owner() { node_exec "$1" clusterctl --json vm show bench | jq -r 'select(.state == "online") | .owner'; }
for ((run = 1; run <= runs; run++)); do
	victim=$(((run - 1) % 3 + 1))
	survivor=$((victim % 3 + 1))
	node_exec "$survivor" clusterctl vm stop bench --wait >/dev/null 2>&1 || true
	node_exec "$survivor" clusterctl vm set bench preferred_owners="node$victim" >/dev/null
	node_exec "$survivor" clusterctl vm start bench --wait >/dev/null
	log=$(node_dir "$survivor")/log/vmclusterd.log
	lines=$(wc -l <"$log")
	t0=$(now_ms)
	node_poweroff "$victim"
	elsewhere() { local o; o=$(owner "$survivor"); [[ -n $o && $o != "node$victim" ]]; }
	wait_for 120 "bench online elsewhere" elsewhere
	t1=$(now_ms)
	left=$(tail -n +"$((lines + 1))" "$log" | grep -m1 "node node$victim left" || true)
	fenced=$(tail -n +"$((lines + 1))" "$log" | grep -m1 "fenced by its leases" || true)
	detect=$([[ -n $left ]] && echo $(($(ms_of_log_line "$left") - t0)) || echo "?")
	expiry=$([[ -n $fenced ]] && echo $(($(ms_of_log_line "$fenced") - t0)) || echo "? (announced by another node)")
	echo "run $run (node$victim off): online elsewhere after $((t1 - t0)) ms; corosync saw the loss after" \
		"$detect ms, the lease was proven expired after $expiry ms; above detection + lease timeout:" \
		"$([[ $detect != "?" ]] && echo $((t1 - t0 - detect - 14000)) || echo "?") ms"
	node_start "$victim"
	wait_for 60 "node $victim back" node_sees "$victim" 3 true
done
finish
