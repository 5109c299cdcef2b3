#!/bin/bash
# Live migration through the bundled agents, encrypted and not, and quick
# migration through a file on the VM's volume: the test
# guest moves from node 1 to node 2 and back while its serial counter goes
# on with no reset and no second boot; ownership and its image lock move;
# the source QEMU is gone; every node agrees; no counter value was printed
# on two nodes (two running copies would each go on from the same value),
# and a watcher sampling every node's QEMUs every 100 ms never sees one
# running (not paused) on two nodes.
# Bad input is refused up front with the state unchanged.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns
command -v qemu-system-x86_64 >/dev/null || harness_skip "qemu-system-x86_64 is not installed"

export VMC_DAEMON_ARGS="--vm-memory=1024 --stop-timeout=2"
guest_cluster_up 3
node_exec 1 clusterctl cluster set accel=tcg fence_method=none lease_io_timeout_s=1 >/dev/null

vol=$HARNESS_RUNDIR/csv1
mkdir -p "$vol"
truncate -s 1M "$vol/web1.img"
node_exec 1 clusterctl volume add csv1 "$vol" >/dev/null
guest_vm_disk web1 node1 "$vol/web1.img" ',"possible_owners":["node1","node2"]' |
	node_exec 1 clusterctl vm add - --start --wait >/dev/null
expect "web1 online on node1" vm_online_on web1 node1
expect "web1's counter runs on node1" wait_for 30 "web1 counter on node1" counter_above 1 web1 10

vm_watch_start -r
lock_node() { node_exec "$1" clusterctl --json volume show csv1 | jq -r '.image_locks[0].node'; }

# move NODE_FROM NODE_TO ENCRYPT: one live move, checked end to end
move() {
	local from=$1 to=$2 enc=$3 before src_pid out seen
	node_exec 1 clusterctl migration set encrypt="$enc" >/dev/null
	seen=$({ cat "$(serial_log "$to" web1)" 2>/dev/null || true; } | wc -l)
	before=$(counter_of "$from" web1)
	src_pid=$(qemu_pids "$from" web1)
	out=$(node_exec 3 clusterctl move-vm web1 "node$to" --wait 2>&1) ||
		{ fail "move-vm web1 node$to (encrypt=$enc) failed: $out"; return; }
	pass "move-vm web1 node$to --wait (encrypt=$enc): $(tail -1 <<<"$out")"
	for n in 1 2 3; do
		expect "node $n: web1 online on node$to" vm_online_on web1 "node$to" "$n"
		expect_eq "node $n: web1's lock is node$to's" "node$to" "$(lock_node "$n")"
	done
	expect "node$to's counter goes on" wait_for 20 "web1 counter on node$to" counter_above "$to" web1 "$before"
	local first
	first=$(tail -n +"$((seen + 1))" "$(serial_log "$to" web1)" | grep -a -o 'vmc-counter [0-9]*' | head -1 | awk '{print $2}')
	[[ -n $first && $first -gt $before ]] && pass "the counter goes on: $before on node$from before, $first first on node$to" ||
		fail "the counter did not go on: $before on node$from before the move, '${first}' first on node$to"
	gone() { [[ -z $(qemu_pids "$from" web1) ]]; }
	expect "the source QEMU (pid $src_pid) is gone" wait_for 10 "node$from's QEMU gone" gone
}

# Each node's serial log is appended: count boots before moving there.
booted_before_2=$(booted_on 2 web1)
move 1 2 on
expect_eq "node2 never booted web1" "$booted_before_2" "$(booted_on 2 web1)"
booted_before_1=$(booted_on 1 web1)
move 2 1 off
expect_eq "node1 did not boot web1 again" "$booted_before_1" "$(booted_on 1 web1)"
expect "every node agrees" nodes_agree 1 2 3

# Quick migration: paused, saved to the volume, the locks handed over, loaded on node 2.
seen=$({ cat "$(serial_log 2 web1)" 2>/dev/null || true; } | wc -l)
before=$(counter_of 1 web1)
booted_before_2=$(booted_on 2 web1)
out=$(node_exec 2 clusterctl move-vm web1 node2 --quick --wait 2>&1) && pass "move-vm --quick: $(tail -1 <<<"$out")" ||
	fail "move-vm web1 node2 --quick failed: $out"
for n in 1 2 3; do expect "node $n: web1 online on node2 after the quick move" vm_online_on web1 node2 "$n"; done
expect "node2's counter goes on after the quick move" wait_for 20 "web1 counter on node2" counter_above 2 web1 "$before"
first=$(tail -n +"$((seen + 1))" "$(serial_log 2 web1)" | grep -a -o 'vmc-counter [0-9]*' | head -1 | awk '{print $2}')
[[ -n $first && $first -gt $before ]] && pass "quick: the counter goes on ($before, then $first)" ||
	fail "quick: the counter did not go on: $before before, '${first}' first on node2"
expect_eq "quick: node2 did not boot web1" "$booted_before_2" "$(booted_on 2 web1)"
expect_eq "quick: the state file is gone" "" "$(ls -A "$vol/.vmcluster-migrate" 2>/dev/null)"
quick_gone() { [[ -z $(qemu_pids 1 web1) ]]; }
expect "quick: node1's QEMU is gone" wait_for 10 "node1's QEMU gone" quick_gone
node_exec 1 clusterctl move-vm web1 node1 --wait >/dev/null || fail "moving web1 back to node1 failed"

# Refused up front, nothing changed.
before=$(node_exec 1 clusterctl --json status | jq -r .config_version)
refused_on 1 1 "no vm named 'ghost'" clusterctl move-vm ghost node2
refused_on 1 1 "no node named 'node9'" clusterctl move-vm web1 node9
refused_on 1 1 "runs on node1 already" clusterctl move-vm web1 node1
refused_on 1 1 "node3 is not a possible owner of vm web1" clusterctl move-vm web1 node3
refused_on 1 2 "exclude each other" clusterctl move-vm web1 node2 --live --quick
refused_on 1 2 "takes no --live" clusterctl vm start web1 --live
refused_on 1 2 "not an IPv4 network" clusterctl migration set network=not-a-net
expect_eq "refusals changed nothing" "$before" "$(node_exec 1 clusterctl --json status | jq -r .config_version)"
expect_eq "web1 still online on node1" "online node1" \
	"$(node_exec 2 clusterctl --json vm show web1 | jq -r '.state + " " + .owner')"
guest_vm nodisk node1 ',"possible_owners":["node1","node2"]' | node_exec 1 clusterctl vm add - --start --wait >/dev/null
refused_on 1 1 "has no disk on one" clusterctl move-vm nodisk node2 --quick
node_exec 1 clusterctl vm stop nodisk --wait >/dev/null

# A VM pinned to a CPU model no node's QEMU gives whole under TCG (it runs,
# without the missing features): its move is refused up front.
guest_vm sky node1 ',"cpu":"Skylake-Server","possible_owners":["node1","node2"]' |
	node_exec 1 clusterctl vm add - --start --wait >/dev/null
expect "sky runs on node1" vm_online_on sky node1
refused_on 3 1 "node node2 cannot run CPU model Skylake-Server under tcg" clusterctl move-vm sky node2
expect_eq "sky stays on node1" "online node1" "$(node_exec 2 clusterctl --json vm show sky | jq -r '.state + " " + .owner')"
node_exec 1 clusterctl vm stop sky --wait >/dev/null

# Migrations into node2 disabled; a target that does not see the VM's volume.
node_exec 1 clusterctl migration set no_incoming=node2 >/dev/null
refused_on 3 1 "migrations into node node2 are disabled" clusterctl move-vm web1 node2
node_exec 1 clusterctl migration set no_incoming= >/dev/null
vol2=$HARNESS_RUNDIR/csv2
mkdir -p "$vol2"
truncate -s 1M "$vol2/web2.img"
node_faultfs 2 "$vol2"
node_faultfs_mode 2 "$vol2" eio
node_exec 1 clusterctl volume add csv2 "$vol2" >/dev/null
csv2_failing_on_2() {
	[[ $(node_exec 1 clusterctl --json volume show csv2 | jq -r '.seen[] | select(.node == "node2") | .health') == failing ]]
}
expect "csv2 fails on node2" wait_for 60 "csv2 failing on node2" csv2_failing_on_2
guest_vm_disk web2 node1 "$vol2/web2.img" ',"possible_owners":["node1","node2"]' |
	node_exec 1 clusterctl vm add - --start --wait >/dev/null
refused_on 1 1 "volume csv2, which vm web2 uses, is not healthy on node node2" clusterctl move-vm web2 node2
expect_eq "web2 stays on node1" "online node1" "$(node_exec 2 clusterctl --json vm show web2 | jq -r '.state + " " + .owner')"
node_exec 1 clusterctl vm stop web2 --wait >/dev/null

expect_eq "no counter value was printed on two nodes" "" "$(counters_on_two web1 1 2 3)"
vm_watch_stop
expect_eq "the watcher (every 100 ms) never saw a VM running, not paused, on two nodes" 0 "$(vm_watch_twice)"
echo "VM watcher: $(tail -1 "$HARNESS_RUNDIR/vm-watch")"
grep -v '^samples' "$HARNESS_RUNDIR/vm-watch" | head -20 || true
finish
