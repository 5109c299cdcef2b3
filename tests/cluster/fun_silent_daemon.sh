#!/bin/bash
# A daemon that stops answering must not stall the cluster (the review's
# "the sync waits forever for a hello"). node2's vmclusterd is SIGSTOPped
# and, while it is, node3 is powered off with a VM: node1's sync excludes
# node2 at the hello deadline, node3 is fenced, and its VM restarts on
# node1 within the hello deadline plus the usual failover time. When node2
# wakes, it finds itself excluded, asks for the sync again, and rejoins.
# A haclient user may manage VMs but not choose the fence agent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns
command -v qemu-system-x86_64 >/dev/null || harness_skip "qemu-system-x86_64 is not installed"
command -v setpriv >/dev/null || harness_skip "setpriv (util-linux) is missing"
getent group haclient >/dev/null || harness_skip "group haclient is missing (tools/install-deps creates it)"

export VMC_DAEMON_ARGS="--vm-memory=1024 --stop-timeout=2"
guest_cluster_up 3

# Privilege: haclient manages VMs, root alone chooses what root runs.
haclient=$(getent group haclient | cut -d: -f3)
as_haclient() { node_exec 1 setpriv --reuid="$(id -u nobody)" --regid="$haclient" --clear-groups "$@"; }
# a haclient member setting fence_agent: refused, exit 5
refused 5 "needs root" as_haclient clusterctl cluster set fence_method=agent fence_agent=/bin/true
expect "a haclient member may change other settings" as_haclient clusterctl cluster set accel=tcg
mine=$HARNESS_RUNDIR/not-roots-agent
cp "$HARNESS_RUNDIR/fence_agent" "$mine"
chown nobody "$mine"
# even root may not make root run a file another user owns: exit 2, naming the owner
refused 2 "owned by uid" node_exec 1 clusterctl cluster set fence_method=agent fence_agent="$mine"
node_exec 1 clusterctl cluster set fence_method=agent fence_agent="$HARNESS_RUNDIR/fence_agent" >/dev/null

vm_json() { # NAME PREFERRED
	printf '{"name":"%s","memory_mib":128,"boot":{"kernel":"%s/vmlinux","initrd":"%s/initrd.img","cmdline":"%s"},"preferred_owners":["%s"],"possible_owners":["node1","node3"]}\n' \
		"$1" "$guest" "$guest" "$(cat "$guest/cmdline")" "$2"
}
vm_online_on() { [[ $(node_exec 1 clusterctl --json vm show "$1" | jq -r '.state + " " + .owner') == "online $2" ]]; }
vm_json web1 node3 | as_haclient clusterctl vm add - --start --wait >/dev/null
expect "a haclient member added and started web1, online on node3" vm_online_on web1 node3

# node2's daemon stops answering; then node3 is powered off.
daemon2=$(node_pid_of 2 vmclusterd)
kill -STOP "$daemon2"
t0=$(harness_now_us)
node_poweroff 3
expect "web1 restarts on node1 although node2's daemon is frozen" wait_for 120 "web1 online on node1" vm_online_on web1 node1
echo "web1 online on node1 $(harness_elapsed_since "$t0") s after node3 was powered off (hello deadline 10 s)"
excluded() { node_exec 1 clusterctl --json status | jq -e '.nodes[] | select(.name == "node2" and .state == "excluded")' >/dev/null; }
expect "node1's status shows node2 excluded from the sync" excluded
expect "node1 logged the exclusion" grep -q "excluded from this sync" "$(node_dir 1)/log/vmclusterd.log"

# node2 wakes, finds itself excluded, and the sync runs again with it.
kill -CONT "$daemon2"
expect "node2 rejoins: both see 2 members up" wait_for 60 "node1 and node2 synced" node_sees 1 2 true
expect "node2 too" wait_for 30 "node2 synced" node_sees 2 2 true
expect "node2 knew it was excluded and asked again" grep -q "this node was excluded from the sync" "$(node_dir 2)/log/vmclusterd.log"
expect "the two agree" nodes_agree 1 2
expect_eq "node2's daemon is the same process (it was never restarted)" "$daemon2" "$(node_pid_of 2 vmclusterd)"

finish
