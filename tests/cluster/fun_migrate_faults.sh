#!/bin/bash
# Faults in the middle of a live migration of the test guest from node 1
# to node 2 (bandwidth held low so each fault lands mid-transfer). After
# each: move-vm fails with a clear error; the guest runs on node 1 alone
# and its counter goes on; every node says web1 is online on node1 with
# its lock there and no migration; nothing of it is left on node 2; no
# counter value was ever printed on two nodes, and a watcher sampling every
# node's QEMUs every 100 ms never saw it running (not paused) on two.
#   - the destination QEMU killed
#   - the destination's listening agent killed
#   - the source's sending agent killed
#   - the destination QEMU killed after the locks moved to node 2 but
#     before the ownership change (node 2's listener held with SIGSTOP so
#     it cannot report the end)
#   - vmclusterd killed on the destination, then on the source
#   - a destination daemon with the wrong cluster key
#   - the link between the nodes cut (node 2 partitioned)
#   - the destination node powered off
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns
command -v qemu-system-x86_64 >/dev/null || harness_skip "qemu-system-x86_64 is not installed"

export VMC_DAEMON_ARGS="--vm-memory=1024 --stop-timeout=2"
guest_cluster_up 3
node_exec 1 clusterctl cluster set accel=tcg fence_method=none >/dev/null
# 8 MiB/s: the guest's 128 MiB take many seconds, time for every fault to land mid-transfer.
node_exec 1 clusterctl migration set bandwidth_mib=8 encrypt=off >/dev/null

vol=$HARNESS_RUNDIR/csv1
mkdir -p "$vol"
truncate -s 1M "$vol/web1.img"
node_exec 1 clusterctl volume add csv1 "$vol" >/dev/null
guest_vm_disk web1 node1 "$vol/web1.img" ',"possible_owners":["node1","node2"]' |
	node_exec 1 clusterctl vm add - --start --wait >/dev/null
expect "web1 online on node1" vm_online_on web1 node1
expect "web1's counter runs on node1" wait_for 30 "web1 counter" counter_above 1 web1 10

vm_watch_start -r

# agent_pid NODE send|listen: the migration agent vmclusterd runs there (its child)
agent_pid() {
	local parent p
	parent=$(node_pid_of "$1" vmclusterd) || return 1
	for p in $(cat "/proc/$parent/task/"*/children 2>/dev/null); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q "vmcluster-migrate $2 " && echo "$p"
	done
	return 0
}
transferring() {
	node_exec 1 clusterctl --json migration status 2>/dev/null |
		jq -e '.migrations[0].phase == "transfer" and (.migrations[0].progress.transferred // 0) > 4000000' >/dev/null
}
phase_is() { [[ $(node_exec 3 clusterctl --json migration status 2>/dev/null | jq -r '.migrations[0].phase // "none"') == "$1" ]]; }

MOVE_OUT=$HARNESS_RUNDIR/move.out
move_start() {
	echo "move at $(date +%s%3N)"
	node_exec 3 clusterctl --timeout 120 move-vm web1 node2 --wait >"$MOVE_OUT" 2>&1 &
	MOVE_PID=$!
	wait_for 30 "web1 transferring to node2" transferring
}

consistent_on() {
	local n=$1
	vm_online_on web1 node1 "$n" &&
		[[ $(node_exec "$n" clusterctl --json volume show csv1 | jq -r '.image_locks[0].node') == node1 ]] &&
		[[ $(node_exec "$n" clusterctl --json migration status | jq '.migrations | length') == 0 ]]
}
nothing_on_2() { [[ -z $(qemu_pids 2 web1) ]]; }

# after FAULT: the move failed clearly and web1 runs on node 1 only
after() {
	local what=$1 rc=0 c
	wait "$MOVE_PID" || rc=$?
	[[ $rc -ne 0 ]] && pass "$what: move-vm failed (exit $rc): $(tail -1 "$MOVE_OUT")" ||
		fail "$what: move-vm said it worked: $(cat "$MOVE_OUT")"
	for n in 1 2 3; do
		expect "$what: node $n says web1 online on node1, lock there, no migration" \
			wait_for 30 "node $n consistent" consistent_on "$n"
	done
	expect "$what: no QEMU of web1 left on node 2" wait_for 20 "node 2 empty" nothing_on_2
	c=$(counter_of 1 web1)
	expect "$what: web1's counter goes on on node 1" wait_for 20 "counter above $c" counter_above 1 web1 "$c"
	expect_eq "$what: one QEMU of web1, on node 1" 1 "$(qemu_pids 1 web1 | wc -w)"
	expect "$what: every node agrees" wait_for 20 "nodes agree" nodes_agree 1 2 3
}

move_start
kill -KILL "$(qemu_pids 2 web1)"
after "destination QEMU killed"

move_start
kill -KILL "$(agent_pid 2 listen)"
after "destination agent killed"

move_start
kill -KILL "$(agent_pid 1 send)"
after "source agent killed"

# The window between the lock handover and the ownership change.
move_start
listener=$(agent_pid 2 listen)
kill -STOP "$listener"
expect "the locks moved to node 2" wait_for 60 "phase switchover" phase_is switchover
expect_eq "node 2 holds web1's lock during the switchover" node2 \
	"$(node_exec 3 clusterctl --json volume show csv1 | jq -r '.image_locks[0].node')"
kill -KILL "$(qemu_pids 2 web1)"
kill -CONT "$listener"
after "destination QEMU killed after the locks moved"

move_start
node_kill_daemon 2
expect "destination vmclusterd killed: the source gives up" wait_for 30 "no migration" phase_is none
node_start_daemon 2
expect "node 2's daemon rejoins" wait_for 60 "node 2 synced" node_sees 2 3 true
after "destination vmclusterd killed"

move_start
node_kill_daemon 1
node_start_daemon 1
expect "node 1's daemon rejoins" wait_for 60 "node 1 synced" node_sees 1 3 true
after "source vmclusterd killed"

head -c 256 /dev/urandom >"$HARNESS_RUNDIR/otherkey"
node_kill_daemon 2
VMC_DAEMON_ARGS="$VMC_DAEMON_ARGS --cluster-key=$HARNESS_RUNDIR/otherkey" node_start_daemon 2
expect "node 2 (wrong key) rejoins" wait_for 60 "node 2 synced" node_sees 2 3 true
rc=0
out=$(node_exec 3 clusterctl move-vm web1 node2 --wait 2>&1) || rc=$?
[[ $rc -ne 0 && $out == *"another cluster key"* ]] && pass "wrong key: refused (exit $rc): $(tail -1 <<<"$out")" ||
	fail "wrong key: move-vm exit $rc: $out"
grep -q "refused a connection from .*: auth" "$(node_dir 2)/log/vmclusterd.log" &&
	pass "wrong key: node 2's listener logged the refusal" || fail "wrong key: node 2 logged no refusal"
for n in 1 2 3; do expect "wrong key: node $n consistent" wait_for 30 "node $n consistent" consistent_on "$n"; done
node_kill_daemon 2
node_start_daemon 2
expect "node 2 rejoins with the right key" wait_for 60 "node 2 synced" node_sees 2 3 true

move_start
node_partition 2
for n in 1 3; do expect "link cut: node $n consistent" wait_for 60 "node $n consistent" consistent_on "$n"; done
node_heal 2
expect "node 2 comes back" wait_for 60 "node 2 synced" node_sees 2 3 true
after "link cut"

move_start
node_poweroff 2
after_partial() {
	local rc=0
	wait "$MOVE_PID" || rc=$?
	[[ $rc -ne 0 ]] && pass "destination powered off: move-vm failed (exit $rc): $(tail -1 "$MOVE_OUT")" ||
		fail "destination powered off: move-vm said it worked"
	for n in 1 3; do
		expect "destination powered off: node $n consistent" wait_for 60 "node $n consistent" consistent_on "$n"
	done
	local c
	c=$(counter_of 1 web1)
	expect "destination powered off: web1's counter goes on" wait_for 20 "counter above $c" counter_above 1 web1 "$c"
}
after_partial

expect_eq "no counter value was printed on two nodes" "" "$(counters_on_two web1 1 2 3)"
vm_watch_stop
expect_eq "the watcher (every 100 ms) never saw web1 running, not paused, on two nodes" 0 "$(vm_watch_twice)"
echo "VM watcher: $(tail -1 "$HARNESS_RUNDIR/vm-watch")"
grep -v '^samples' "$HARNESS_RUNDIR/vm-watch" | head -20 || true
finish
