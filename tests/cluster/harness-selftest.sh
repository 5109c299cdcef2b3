#!/bin/bash
#
# harness-selftest.sh: proves tests/cluster/harness.sh with corosync alone
# (no vmclusterd): membership, partition and heal, power-off and restart,
# orderly stop, per-node private mounts, and a teardown that leaves nothing.
# Exit 0 = pass, 1 = fail, 77 = skipped (not root, no netns, no corosync).

set -euo pipefail
# shellcheck source-path=SCRIPTDIR

# shellcheck source=harness.sh
. "$(dirname "$0")/harness.sh"

harness_require_root_netns
export VMC_HARNESS_NO_DAEMON=1

# Prints PASS/FAIL; the first failure ends the test (the EXIT trap then shows
# the nodes' logs and tears down).
check() {
	local what=$1
	shift
	if "$@"; then
		echo "PASS: $what"
	else
		echo "FAIL: $what"
		exit 1
	fi
}

all_see_members() {
	local n=$1 i
	for i in "${@:2}"; do
		node_sees_members "$i" "$n" || return 1
	done
}

exit_status_is() {
	local want=$1 status=0
	shift
	"$@" || status=$?
	[[ $status == "$want" ]]
}

node_has_only_test_route() {
	local routes
	routes=$(node_exec "$1" ip -4 route show)
	[[ $routes == "$VMC_TEST_NET.0/24 dev eth0 "* && $(wc -l <<<"$routes") == 1 ]]
}

node_has_address() {
	node_exec "$1" ip -4 -o addr show dev eth0 | grep -qF " $2/24 "
}

# A file written in the node's /var/lib/vmcluster lands in its own dir only.
private_dir_is_bound() {
	local marker="selftest.$$"
	node_exec 1 touch "/var/lib/vmcluster/$marker" &&
		[[ -e $(node_dir 1)/lib-vmcluster/$marker ]] &&
		[[ ! -e $(node_dir 2)/lib-vmcluster/$marker ]] &&
		[[ ! -e /var/lib/vmcluster/$marker ]]
}

node_shm_is_own_tmpfs() {
	[[ $(node_exec "$1" stat -f -c %T /dev/shm) == tmpfs ]] &&
		[[ $(node_exec "$1" stat -c %i /dev/shm) != $(stat -c %i /dev/shm) ||
			$(node_exec "$1" stat -c %d /dev/shm) != $(stat -c %d /dev/shm) ]]
}

host_qb_rings() { find /dev/shm -maxdepth 1 -name 'qb-*' | sort; }

node_is_empty() { [[ -z $(node_pids "$1") ]]; }

pid_is_dead() { ! kill -0 "$1" 2>/dev/null || grep -q '^State:.*Z' "/proc/$1/status"; }

no_netns_with_prefix() { ! ip netns list | grep -q "^$HARNESS_PREFIX-"; }

blackhole_absent() {
	[[ -z $(ip -4 route show exact "$VMC_TEST_NET.0/24" type blackhole) ]]
}

no_mount_under() { ! findmnt -rn -o TARGET | grep -qF "$1"; }

# ------------------------------------------------------------------ test

had_blackhole=0
blackhole_absent || had_blackhole=1
rings_before=$(host_qb_rings)

cluster_up 3
check "all 3 nodes see 3 members, quorate" all_see_members 3 1 2 3
check "node 1 has address $VMC_TEST_NET.11" node_has_address 1 "$VMC_TEST_NET.11"
check "node 1 routes only the test range" node_has_only_test_route 1
check "node_exec passes the exit status" exit_status_is 3 node_exec 1 sh -c 'exit 3'
check "node 1's /var/lib/vmcluster is private" private_dir_is_bound
check "node 2's /dev/shm is its own tmpfs" node_shm_is_own_tmpfs 2
check "node 1 writes its corosync.log" test -s "$(node_dir 1)/log/corosync.log"

node_partition 3
check "partitioned node 3 loses quorum" \
	wait_for 20 "node 3 inquorate" node_is_inquorate 3
check "nodes 1-2 stay quorate with 2 members" \
	wait_for 20 "nodes 1 and 2 at 2 members" all_see_members 2 1 2

node_heal 3
check "healed: all see 3 members" \
	wait_for 30 "3 members after heal" all_see_members 3 1 2 3

old_pid=$(node_pid_of 2 corosync)
node_poweroff 2
check "no process of node 2 remains" node_is_empty 2
check "node 2's corosync (pid $old_pid) is dead" pid_is_dead "$old_pid"
check "node 1 sees 2 members after node 2's power-off" \
	wait_for 20 "node 1 at 2 members" all_see_members 2 1

node_start 2
check "node 2 restarted with a new corosync" test "$(node_pid_of 2 corosync)" != "$old_pid"
check "node 2 back: all see 3 members" \
	wait_for 30 "3 members after restart" all_see_members 3 1 2 3

old_pid=$(node_pid_of 3 corosync)
node_stop 3
check "node_stop 3 ends its corosync" pid_is_dead "$old_pid"
check "nodes 1-2 see 2 members after node 3's stop" \
	wait_for 20 "2 members after stop" all_see_members 2 1 2
node_start 3
check "node 3 back: all see 3 members" \
	wait_for 30 "3 members after node 3 restart" all_see_members 3 1 2 3

check "killed nodes left no libqb rings in the host's /dev/shm" \
	test "$(host_qb_rings)" == "$rings_before"

# ------------------------------------------------------------------ teardown

rundir=$(dirname "$(node_dir 1)")
pids=$(for i in 1 2 3; do node_pids "$i"; done)
cluster_down 0
check "teardown removed every $HARNESS_PREFIX- namespace" no_netns_with_prefix
if ((had_blackhole)); then
	echo "note: a blackhole route for the test range existed before, left as found"
else
	check "teardown removed the blackhole route" blackhole_absent
fi
check "teardown left no mount under $rundir" no_mount_under "$rundir"
check "teardown removed $rundir" test ! -e "$rundir"
for pid in $pids; do
	check "node process $pid is gone" pid_is_dead "$pid"
done
