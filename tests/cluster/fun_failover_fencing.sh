#!/bin/bash
# A node powered off while it runs VMs: the survivors fence it with the
# harness's fence agent, then restart its VMs on themselves, high priority
# first; a watcher sampling every node's QEMUs every 100 ms finds no VM on
# two nodes at once. A partitioned node stops its VMs (no quorum) and the
# others restart them only after fencing it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns
command -v qemu-system-x86_64 >/dev/null || harness_skip "qemu-system-x86_64 is not installed"

export VMC_DAEMON_ARGS="--vm-memory=1024 --stop-timeout=2"
cluster_up 3
guest=$HARNESS_RUNDIR/guest
"$here/../guest/build-guest" "$guest" >"$HARNESS_RUNDIR/build-guest.log" 2>&1 ||
	{ cat "$HARNESS_RUNDIR/build-guest.log" >&2; fail "the test guest could not be built"; finish; }
for i in 1 2 3; do wait_for 30 "node $i quorate" node_sees "$i" 3 true; done
node_exec 1 clusterctl cluster set accel=tcg fence_method=agent fence_agent="$HARNESS_RUNDIR/fence_agent" >/dev/null

vm_json() { # NAME PREFERRED PRIORITY [ANTI]
	printf '{"name":"%s","memory_mib":128,"boot":{"kernel":"%s/vmlinux","initrd":"%s/initrd.img","cmdline":"%s"},"preferred_owners":["%s"],"priority":"%s","anti_affinity":[%s]}\n' \
		"$1" "$guest" "$guest" "$(cat "$guest/cmdline")" "$2" "$3" "${4:-}"
}
qemu_nodes_of() { # VM: the nodes where a QEMU named VM runs
	local i pid
	for i in 1 2 3; do
		for pid in $(node_pids "$i" 2>/dev/null); do
			if { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -q -- "-name $1\b"; then echo "node$i"; fi
		done
	done
}
vm_field() { node_exec "${2:-1}" clusterctl --json vm show "$1" | jq -r ".$3"; }
vm_on() { [[ $(node_exec "$3" clusterctl --json vm show "$1" | jq -r '.state + " " + .owner') == "online $2" ]]; }
# vm_online_not_on VM NODE ASK: online, owned by another node than NODE (asking node ASK)
vm_online_not_on() {
	local s
	s=$(node_exec "$3" clusterctl --json vm show "$1" | jq -r '.state + " " + .owner')
	[[ $s == online\ * && $s != "online $2" ]]
}

vm_json web1 node3 high '"web"' | node_exec 1 clusterctl vm add - --start --wait >/dev/null
vm_json web2 node1 low '"web"' | node_exec 1 clusterctl vm add - --start --wait >/dev/null
vm_json db1 node1 medium | node_exec 2 clusterctl vm add - --start --wait >/dev/null
vm_json batch1 node3 low | node_exec 3 clusterctl vm add - --start --wait >/dev/null
expect "web1 online on node3" vm_on web1 node3 1
expect "batch1 online on node3" vm_on batch1 node3 1
expect "web2 online on node1" vm_on web2 node1 1
expect "db1 online on node1" vm_on db1 node1 1

# The watcher: every 100 ms, every VM's QEMUs on every node; a line when one runs twice.
watch_log=$HARNESS_RUNDIR/watch.log
(
	while [[ -e $HARNESS_RUNDIR/watching ]]; do
		for vm in web1 web2 db1 batch1; do
			n=$(qemu_nodes_of "$vm" | wc -l)
			[[ $n -le 1 ]] || echo "$(date +%T.%N) $vm runs on $n nodes: $(qemu_nodes_of "$vm" | tr '\n' ' ')"
		done
		sleep 0.1
	done
) >"$watch_log" 2>&1 &
touch "$HARNESS_RUNDIR/watching"

node_poweroff 3
expect "node 3 is fenced by a survivor" wait_for 60 "fencing of node3" \
	grep -q "node node3 fenced" "$(node_dir 1)/log/vmclusterd.log" "$(node_dir 2)/log/vmclusterd.log"
for vm in web1 batch1; do
	expect "$vm runs again on a survivor" wait_for 120 "$vm online elsewhere" vm_online_not_on "$vm" node3 1
done
expect_eq "web1 avoids node1, where web2 (same anti-affinity class) runs" node2 "$(vm_field web1 1 owner)"
expect_eq "batch1 goes where most memory is left after web1" node2 "$(vm_field batch1 1 owner)"
order=$(grep -o "vm [a-z0-9]*: starting on node2" "$(node_dir 2)/log/vmclusterd.log" | tail -2 | awk '{print $2}' | tr -d ':' | tr '\n' ' ')
expect_eq "node2 started the high priority VM first" "web1 batch1 " "$order"

node_start 3
expect "node 3 rejoins" wait_for 60 "node 3 synced" node_sees 3 3 true
expect "no VM runs on node 3 it does not own" test -z "$(qemu_nodes_of web1 | grep node3 || true)$(qemu_nodes_of batch1 | grep node3 || true)"

# A partition: node 1 (with db1) is cut off. Without quorum it stops db1
# itself; the others fence it (the agent powers it off), then restart db1.
node_partition 1
db1_not_on_node1() { ! qemu_nodes_of db1 | grep -q node1; }
expect "node 1 stops db1 itself or is fenced" wait_for 60 "db1 gone from node1" db1_not_on_node1
expect "db1 runs again on node 2 or 3" wait_for 120 "db1 online elsewhere" vm_online_not_on db1 node1 2
node_heal 1
node_poweroff 1
node_start 1
expect "node 1 rejoins after its fencing" wait_for 60 "node 1 synced" node_sees 1 3 true
expect "node 1 runs no copy of db1" db1_not_on_node1
rm -f "$HARNESS_RUNDIR/watching"
wait
expect "the watcher never saw a VM on two nodes" test ! -s "$watch_log"
cat "$watch_log"

finish
