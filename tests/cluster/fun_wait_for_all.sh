#!/bin/bash
# A 3-node cluster with corosync's wait_for_all: 1, cold-started with one
# node late. While corosync says the two early nodes are not quorate,
# nothing is fenced and nothing is started or stopped; once the third
# arrives, everything runs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns
command -v qemu-system-x86_64 >/dev/null || harness_skip "qemu-system-x86_64 is not installed"

export VMC_DAEMON_ARGS="--vm-memory=1024 --stop-timeout=2"
export HARNESS_QUORUM_OPTIONS="wait_for_all: 1"
guest_cluster_up 3
node_exec 1 clusterctl cluster set accel=tcg fence_method=agent fence_agent="$HARNESS_RUNDIR/fence_agent" >/dev/null
guest_vm web1 node1 | node_exec 1 clusterctl vm add - --start --wait >/dev/null
guest_vm db1 node3 | node_exec 1 clusterctl vm add - --start --wait >/dev/null
expect "web1 online on node1" vm_online_on web1 node1
expect "db1 online on node3" vm_online_on db1 node3

# A cold stop: every node down, VMs and all. What the logs say from here on counts.
for i in 1 2 3; do node_poweroff "$i"; done
declare -A mark
for i in 1 2 3; do mark[$i]=$(wc -l <"$(node_dir "$i")/log/vmclusterd.log"); done
new_log() { tail -n +$((mark[$1] + 1)) "$(node_dir "$1")/log/vmclusterd.log"; }
qemus_on() { node_pids "$1" | while read -r pid; do cat "/proc/$pid/comm" 2>/dev/null; done | grep -c qemu || true; }
node_start 1
node_start 2
expect "corosync says nodes 1-2 are not quorate (wait_for_all)" \
	wait_for 30 "nodes 1-2 synced, not quorate" node_sees 1 2 false
# An observation window, well past when fencing or recovery would begin.
quiet=1
for ((t = 0; t < 20; t++)); do
	if new_log 1 | grep -q "fencing\|starting on" || new_log 2 | grep -q "fencing\|starting on" ||
		(($(qemus_on 1) + $(qemus_on 2) > 0)); then
		quiet=0
		break
	fi
	sleep 0.5
done
expect "for 10 s without quorum nothing was fenced or started" test "$quiet" = 1
add_early() { vm_def early | node_exec 1 clusterctl vm add -; }
refused 4 "no quorum" add_early

node_start 3
for i in 1 2 3; do expect "node $i quorate with all three" wait_for 60 "node $i quorate" node_sees "$i" 3 true; done
expect "web1 runs again" wait_for 120 "web1 online on node1" vm_online_on web1 node1
expect "db1 runs again" wait_for 120 "db1 online on node3" vm_online_on db1 node3
nobody_fenced() { ! { new_log 1; new_log 2; new_log 3; } | grep -q "node node[0-9] fenced"; }
expect "nobody was fenced" nobody_fenced

finish
