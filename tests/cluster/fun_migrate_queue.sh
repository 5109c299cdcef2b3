#!/bin/bash
# Migration limits, queue and dirty guests. Six moves asked at once from
# node 1 with migration max_parallel 2: never more than 2 in flight from
# node 1 in any sample of migration status (every 100 ms), and all six
# complete. Two moves of one VM asked at once from two nodes: one runs,
# the other is refused. Guests dirtying 64 and 256 MiB/s move, encrypted
# and not. One that cannot converge (64 MiB/s of dirt through 4 MiB/s)
# is either brought home by auto-converge or cancelled at its timeout,
# and then still runs on the source.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns
command -v qemu-system-x86_64 >/dev/null || harness_skip "qemu-system-x86_64 is not installed"

export VMC_DAEMON_ARGS="--vm-memory=1024 --stop-timeout=2"
guest_cluster_up 3
node_exec 1 clusterctl cluster set accel=tcg fence_method=none >/dev/null
expect_eq "the default limit is 2" 2 "$(node_exec 2 clusterctl --json migration status | jq -r .max_parallel)"

for k in 1 2 3 4 5 6; do
	guest_vm "q$k" node1 | node_exec 1 clusterctl vm add - --start >/dev/null
done
all_on() { local k; for k in 1 2 3 4 5 6; do vm_online_on "q$k" "$1" 3 || return 1; done; }
expect "six guests online on node1" wait_for 90 "q1..q6 online on node1" all_on node1

# Watch the limit from node 3's copy while the six moves run.
sample_file=$HARNESS_RUNDIR/inflight
(
	while :; do
		node_exec 3 clusterctl --json migration status 2>/dev/null |
			jq -r '[.migrations[] | select(.phase == "transfer" or .phase == "switchover")] | length' || true
		sleep 0.1
	done >"$sample_file"
) &
sampler=$!
HARNESS_OUTSIDE_PIDS+=("$sampler")
for k in 1 2 3 4 5 6; do
	node_exec 1 clusterctl move-vm "q$k" "node$((2 + k % 2))" >/dev/null || fail "move-vm q$k refused"
done
queued=$(node_exec 1 clusterctl --json migration status | jq '[.migrations[] | select(.phase == "queued")] | length')
[[ $queued -ge 1 ]] && pass "with six asked at once, $queued wait in the queue" || fail "nothing was queued ($queued)"
targets_reached() { local k; for k in 1 2 3 4 5 6; do vm_online_on "q$k" "node$((2 + k % 2))" 3 || return 1; done; }
expect "all six moved" wait_for 180 "q1..q6 on their targets" targets_reached
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
max=$(sort -n "$sample_file" | tail -1)
[[ -n $max && $max -ge 1 && $max -le 2 ]] && pass "never more than 2 in flight: at most $max in $(wc -l <"$sample_file") samples" ||
	fail "in flight at once: up to '$max' in $(wc -l <"$sample_file") samples (limit 2)"
for k in 1 2 3 4 5 6; do node_exec 1 clusterctl vm stop "q$k" >/dev/null; done

# One VM, two moves at once from two nodes.
guest_vm twice node1 | node_exec 1 clusterctl vm add - --start --wait >/dev/null
rc2=0 rc3=0
node_exec 2 clusterctl move-vm twice node2 >"$HARNESS_RUNDIR/m2" 2>&1 & p2=$!
node_exec 3 clusterctl move-vm twice node3 >"$HARNESS_RUNDIR/m3" 2>&1 & p3=$!
wait "$p2" || rc2=$?
wait "$p3" || rc3=$?
if [[ $rc2 -eq 0 && $rc3 -eq 1 ]] || [[ $rc2 -eq 1 && $rc3 -eq 0 ]]; then
	pass "two moves of one VM at once: one runs, one refused ($(cat "$HARNESS_RUNDIR/m2" "$HARNESS_RUNDIR/m3" | grep -h 'already moving'))"
else
	fail "two moves of one VM: exits $rc2 and $rc3: $(cat "$HARNESS_RUNDIR/m2" "$HARNESS_RUNDIR/m3")"
fi
settled() { [[ $(node_exec 1 clusterctl --json migration status | jq '.migrations | length') == 0 ]]; }
expect "that move ends" wait_for 60 "no migration" settled
node_exec 1 clusterctl vm stop twice >/dev/null

# Dirty guests, encrypted and not.
for rate in 64 256; do
	guest_vm_args "dirty$rate" node1 "vmc.dirty_mib_s=$rate vmc.buffer_mib=48" |
		node_exec 1 clusterctl vm add - --start --wait >/dev/null
	wait_for 30 "dirty$rate counting" counter_above 1 "dirty$rate" 10
	for enc in on off; do
		node_exec 1 clusterctl migration set encrypt=$enc >/dev/null
		from=$(node_exec 1 clusterctl --json vm show "dirty$rate" | jq -r .owner)
		to=node2
		[[ $from == node2 ]] && to=node1
		out=$(node_exec 3 clusterctl --timeout 120 move-vm "dirty$rate" "$to" --wait 2>&1) &&
			pass "a guest dirtying $rate MiB/s moved (encrypt=$enc): $(tail -1 <<<"$out")" ||
			fail "a guest dirtying $rate MiB/s did not move (encrypt=$enc): $out"
	done
	node_exec 1 clusterctl vm stop "dirty$rate" >/dev/null
done

# One that cannot converge at 4 MiB/s: auto-converge brings it home, or the timeout cancels it.
node_exec 1 clusterctl migration set bandwidth_mib=4 timeout_s=15 encrypt=on >/dev/null
guest_vm_args stubborn node1 "vmc.dirty_mib_s=64 vmc.buffer_mib=48" |
	node_exec 1 clusterctl vm add - --start --wait >/dev/null
wait_for 30 "stubborn counting" counter_above 1 stubborn 10
rc=0
out=$(node_exec 3 clusterctl --timeout 120 move-vm stubborn node2 --wait 2>&1) || rc=$?
owner=$(node_exec 2 clusterctl --json vm show stubborn | jq -r '.state + " " + .owner')
if [[ $rc -eq 0 && $owner == "online node2" ]]; then
	pass "the non-converging guest was brought home by auto-converge: $(tail -1 <<<"$out")"
elif [[ $rc -eq 1 && $out == *"did not converge"* && $owner == "online node1" ]]; then
	pass "the non-converging guest was cancelled at its timeout and runs on node1: $(tail -1 <<<"$out")"
	c=$(counter_of 1 stubborn)
	expect "it goes on running on node1" wait_for 20 "stubborn counter" counter_above 1 stubborn "$c"
else
	fail "the non-converging guest: exit $rc, '$owner': $out"
fi
expect "every node agrees" wait_for 20 "nodes agree" nodes_agree 1 2 3
for k in q1 q2 q3 q4 q5 q6 twice dirty64 dirty256 stubborn; do
	expect_eq "$k never printed a counter value on two nodes" "" "$(counters_on_two "$k" 1 2 3 2>/dev/null || true)"
done
finish
