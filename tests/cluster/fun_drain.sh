#!/bin/bash
# Node drain and resume on real corosync and QEMU (test guests, TCG).
#  1. node1 runs four guests and is drained: each moves live (its counter
#     goes on, no second boot); node1 reads draining in every sample while
#     a VM is left there and paused only once none is; nothing is placed
#     on it while paused (a start, a move).
#  2. node resume --failback immediate: the four come back live.
#  3. A drain where one VM may run on node1 only and another cannot move
#     live in time: drain-failed, naming both with their reasons; the VM
#     that has somewhere to go moves with --force by quick migration.
#  4. A daemon restart keeps node1's VMs running in place; node shutdown
#     (shutdown_policy migrate) moves them live, then node1's daemon exits
#     by itself; started again, node1 takes VMs again.
# A watcher samples every node's QEMUs every 100 ms: no VM on two nodes.
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
node_exec 1 clusterctl volume add csv1 "$vol" >/dev/null
# Placement skips a node that has not yet seen the volume healthy: wait, so the guests start on node1.
healthy_everywhere() { [[ $(node_exec 1 clusterctl --json volume show csv1 | jq '[.seen[] | select(.health == "ok")] | length') == 3 ]]; }
expect "csv1 healthy on every node" wait_for 30 "csv1 healthy on 3 nodes" healthy_everywhere
guests=(d1 d2 d3 d4)
for vm in "${guests[@]}"; do
	truncate -s 1M "$vol/$vm.img"
	guest_vm_disk "$vm" node1 "$vol/$vm.img" | node_exec 1 clusterctl vm add - --start >/dev/null
done
all_on() { local vm; for vm in "${guests[@]}"; do vm_online_on "$vm" "$1" 3 || return 1; done; }
expect "four guests online on node1" wait_for 120 "d1..d4 online on node1" all_on node1
for vm in "${guests[@]}"; do
	wait_for 30 "$vm counting" counter_above 1 "$vm" 5
	expect_eq "$vm booted once, on node1" "1 0 0" "$(booted_on 1 "$vm") $(booted_on 2 "$vm") $(booted_on 3 "$vm")"
done
vm_watch_start -r

# node1's mode and how many VMs it has, as node 3 sees them, every 100 ms.
node1_sample() { node_exec 3 clusterctl --json node list | jq -r '.[] | select(.name == "node1") | "\(.mode) \(.vms)"'; }
sampler_start() {
	(while :; do node1_sample 2>/dev/null || true; sleep 0.1; done) >"$1" &
	sampler=$!
	HARNESS_OUTSIDE_PIDS+=("$sampler")
}
sampler_stop() { kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true; }

# 1. Drain.
declare -A before
for vm in "${guests[@]}"; do before[$vm]=$(counter_of 1 "$vm"); done
sampler_start "$HARNESS_RUNDIR/drain-samples"
out=$(node_exec 2 clusterctl --timeout 300 node drain node1 --wait 2>&1) &&
	pass "node drain node1 --wait: $(tail -1 <<<"$out")" || fail "node drain node1 --wait failed: $out"
sampler_stop
expect_eq "node1 reads paused" "paused 0" "$(node1_sample)"
samples=$(wc -l <"$HARNESS_RUNDIR/drain-samples")
early=$(awk '$1 == "paused" && $2 > 0' "$HARNESS_RUNDIR/drain-samples" | wc -l)
during=$(awk '$2 > 0 && $1 == "draining"' "$HARNESS_RUNDIR/drain-samples" | wc -l)
other=$(awk '$1 != "draining" && $1 != "paused" && $1 != "active"' "$HARNESS_RUNDIR/drain-samples" | wc -l)
expect_eq "never paused while a VM was left there ($samples samples)" 0 "$early"
expect_eq "no other mode meanwhile" 0 "$other"
[[ $during -ge 1 ]] && pass "draining, with VMs left, in $during samples" || fail "no sample saw node1 draining"
for vm in "${guests[@]}"; do
	owner=$(node_exec 1 clusterctl --json vm show "$vm" | jq -r '.state + " " + .owner')
	to=${owner#online }
	if [[ $owner == "online node2" || $owner == "online node3" ]]; then
		pass "$vm moved live to $to"
	else
		fail "$vm after the drain: '$owner'"
		continue
	fi
	n=${to#node}
	expect "$vm's counter goes on on $to" wait_for 20 "$vm counter on $to" counter_above "$n" "$vm" "${before[$vm]}"
	expect_eq "$vm did not boot on $to" 0 "$(booted_on "$n" "$vm")"
	expect_eq "vm show names node1 as $vm's home" "node1 drain" \
		"$(node_exec 3 clusterctl --json vm show "$vm" | jq -r '.failback.home + " " + .failback.kind')"
done
node_exec 1 clusterctl node list | grep -q '^node1 .* paused' && pass "node list says paused" ||
	fail "node list: $(node_exec 1 clusterctl node list)"

# Nothing is placed on a paused node.
truncate -s 1M "$vol/late.img"
guest_vm_disk late node1 "$vol/late.img" | node_exec 1 clusterctl vm add - --start --wait >/dev/null
owner=$(node_exec 1 clusterctl --json vm show late | jq -r .owner)
[[ $owner != node1 ]] && pass "a VM preferring node1 starts on $owner while node1 is paused" ||
	fail "a VM was placed on paused node1"
refused_on 2 1 "node node1 is paused: it takes no VMs" clusterctl move-vm late node1
refused_on 2 1 "paused already" clusterctl node drain node1
node_exec 1 clusterctl vm stop late --wait >/dev/null

# 2. Resume with immediate failback: the four come home live.
for vm in "${guests[@]}"; do before[$vm]=$(counter_of "$(node_exec 1 clusterctl --json vm show "$vm" | jq -r '.owner | ltrimstr("node")')" "$vm"); done
out=$(node_exec 3 clusterctl --timeout 300 node resume node1 --failback immediate --wait 2>&1) &&
	pass "node resume node1 --failback immediate --wait: $(tail -1 <<<"$out")" || fail "node resume failed: $out"
expect "the four are back on node1" wait_for 60 "d1..d4 on node1" all_on node1
for vm in "${guests[@]}"; do
	expect "$vm's counter goes on on node1" wait_for 20 "$vm counter on node1" counter_above 1 "$vm" "${before[$vm]}"
	expect_eq "$vm booted on node1 once (no reboot)" 1 "$(booted_on 1 "$vm")"
	expect_eq "$vm has no home left" none "$(node_exec 2 clusterctl --json vm show "$vm" | jq -r .failback.plan)"
done
expect_eq "node1 is active" "active" "$(node1_sample | cut -d' ' -f1)"
for vm in "${guests[@]}"; do node_exec 1 clusterctl vm stop "$vm" >/dev/null; done
stopped() { local vm; for vm in "${guests[@]}"; do [[ $(node_exec 1 clusterctl --json vm show "$vm" | jq -r .state) == offline ]] || return 1; done; }
expect "the four are stopped" wait_for 60 "d1..d4 offline" stopped

# 3. One VM with no other possible owner, one too slow to move live in time.
guest_vm pinned node1 ',"possible_owners":["node1"]' | node_exec 1 clusterctl vm add - --start --wait >/dev/null
truncate -s 1M "$vol/slow.img"
guest_vm_args slow node1 "vmc.dirty_mib_s=4 vmc.buffer_mib=32" ",\"disks\":[{\"path\":\"$vol/slow.img\"}]" |
	node_exec 1 clusterctl vm add - --start --wait >/dev/null
wait_for 30 "slow counting" counter_above 1 slow 5
node_exec 1 clusterctl migration set bandwidth_mib=1 timeout_s=4 >/dev/null
rc=0
out=$(node_exec 2 clusterctl --timeout 300 node drain node1 --wait 2>&1) || rc=$?
expect_eq "the drain fails (exit 1)" 1 "$rc"
[[ $out == *"vm pinned:"*"not a possible owner"* ]] && pass "it names pinned: $(grep 'vm pinned' <<<"$out")" ||
	fail "pinned not named with its reason: $out"
[[ $out == *"vm slow:"*"live migration failed 2 times"* ]] && pass "it names slow: $(grep 'vm slow' <<<"$out")" ||
	fail "slow not named with its reason: $out"
expect_eq "node1 reads drain-failed" "drain-failed" "$(node1_sample | cut -d' ' -f1)"
node_exec 1 clusterctl node list | grep -q 'vm pinned: .*not a possible owner' && pass "node list names pinned and why" ||
	fail "node list: $(node_exec 1 clusterctl node list)"
expect "slow still runs on node1" vm_online_on slow node1 2
c=$(counter_of 1 slow)
expect "slow's counter goes on on node1" wait_for 20 "slow counter" counter_above 1 slow "$c"

node_exec 1 clusterctl vm stop pinned --wait >/dev/null
# Its live tries still count: --force goes on with quick migration, which has time enough now.
node_exec 1 clusterctl migration set bandwidth_mib=0 timeout_s=60 >/dev/null
c=$(counter_of 1 slow)
out=$(node_exec 2 clusterctl --timeout 300 node drain node1 --force --wait 2>&1) &&
	pass "node drain node1 --force --wait: $(tail -1 <<<"$out")" || fail "the forced drain failed: $out"
owner=$(node_exec 1 clusterctl --json vm show slow | jq -r '.state + " " + .owner')
[[ $owner == "online node2" || $owner == "online node3" ]] && pass "slow moved to ${owner#online }" ||
	fail "slow after the forced drain: '$owner'"
reason=$(node_exec 1 clusterctl --json vm show slow | jq -r .reason)
[[ $reason == *"moved (quick)"* ]] && pass "by quick migration: $reason" || fail "slow's reason: $reason"
n=${owner#online node}
expect "slow's counter goes on after the quick move" wait_for 20 "slow counter on node$n" counter_above "$n" slow "$c"
expect_eq "slow did not boot on node$n" 0 "$(booted_on "$n" slow)"
expect_eq "node1 reads paused" "paused 0" "$(node1_sample)"
expect_eq "the quick move's state file is gone" "" "$(ls -A "$vol/.vmcluster-migrate" 2>/dev/null)"
node_exec 1 clusterctl node resume node1 --failback none >/dev/null
expect_eq "resumed with --failback none, slow stays" "online node$n" \
	"$(node_exec 1 clusterctl --json vm show slow | jq -r '.state + " " + .owner')"

# 4. A daemon restart leaves the VMs running in place; a host shutdown (shutdown_policy migrate) moves them first.
for vm in s1 s2; do
	truncate -s 1M "$vol/$vm.img"
	guest_vm_disk "$vm" node1 "$vol/$vm.img" | node_exec 1 clusterctl vm add - --start --wait >/dev/null
	wait_for 30 "$vm counting" counter_above 1 "$vm" 5
done
pids_before=$(qemu_pids 1 s1) pids2_before=$(qemu_pids 1 s2)
harness_stop_program 1 vmclusterd
node_start_daemon 1
expect "node1's daemon is back" wait_for 60 "node 1 synced" node_sees 1 3 true
expect_eq "s1's QEMU runs on through the daemon restart" "$pids_before" "$(qemu_pids 1 s1)"
expect_eq "s2's QEMU runs on through the daemon restart" "$pids2_before" "$(qemu_pids 1 s2)"
for vm in s1 s2; do expect "$vm online on node1 after the restart" vm_online_on "$vm" node1 3; done
expect_eq "node1 is active after the restart" active "$(node1_sample | cut -d' ' -f1)"

daemon1=$(node_pid_of 1 vmclusterd)
for vm in s1 s2; do before[$vm]=$(counter_of 1 "$vm"); done
out=$(node_exec 2 clusterctl --timeout 300 node shutdown node1 --wait 2>&1) &&
	pass "node shutdown node1 --wait: $(tail -1 <<<"$out")" || fail "node shutdown node1 failed: $out"
expect "node1's vmclusterd exited by itself" wait_for 20 "vmclusterd $daemon1 gone" harness_pid_gone_from_node 1 "$daemon1"
expect_eq "no QEMU is left on node1" "" "$(qemu_pids 1 s1)$(qemu_pids 1 s2)"
for vm in s1 s2; do
	owner=$(node_exec 2 clusterctl --json vm show "$vm" | jq -r '.state + " " + .owner')
	n=${owner#online node}
	[[ $owner == "online node2" || $owner == "online node3" ]] && pass "$vm moved to node$n before node1's daemon exited" ||
		{ fail "$vm after node1's shutdown: '$owner'"; continue; }
	expect "$vm's counter goes on on node$n" wait_for 20 "$vm counter" counter_above "$n" "$vm" "${before[$vm]}"
	expect_eq "$vm did not boot on node$n" 0 "$(booted_on "$n" "$vm")"
done
node_start_daemon 1
back_active() { [[ $(node_exec 2 clusterctl --json node list | jq -r '.[] | select(.name == "node1") | .mode') == active ]]; }
expect "node1 takes VMs again once its daemon is back" wait_for 60 "node1 active" back_active

vm_watch_stop
expect_eq "no VM ran on two nodes at once (watcher)" 0 "$(vm_watch_twice)"
expect "every node agrees" wait_for 20 "nodes agree" nodes_agree 1 2 3
for vm in "${guests[@]}" slow s1 s2; do
	expect_eq "$vm never printed a counter value on two nodes" "" "$(counters_on_two "$vm" 1 2 3 2>/dev/null || true)"
done
finish
