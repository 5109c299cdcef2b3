#!/bin/bash
# A node that joins and dies while the others sync it must not hang them:
# node 3 (stale, so it needs the whole snapshot) is started and powered off
# the moment the others see it join, several times; each time nodes 1-2
# finish their sync and accept a change.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns

cluster_up 3
for i in 1 2 3; do wait_for 30 "node $i quorate" node_sees "$i" 3 true; done
node_poweroff 3
wait_for 30 "node 3 to leave" node_sees 1 2 true
# Thousands of groups make the snapshot several CPG messages long (and the
# vm list answer larger than clusterctl's first IPC buffer).
node_exec 1 "$VMC_BUILDDIR/bench/vmc-load" --adds-only --count 5000 --window 16 --prefix bulk >/dev/null

log1=$(node_dir 1)/log/vmclusterd.log
joined_count() { grep -c "node node3 joined the vmcluster group" "$log1" || true; }
joined_more_than() { [[ $(joined_count) -gt $1 ]]; }

for round in 1 2 3 4 5; do
	before=$(joined_count)
	node_start_racing 3
	wait_for 60 "node 1 to see node 3 join" joined_more_than "$before" || true
	node_poweroff 3
	expect "round $round: nodes 1-2 finish their sync without node 3" \
		wait_for 30 "nodes 1-2 synced" node_sees 1 2 true
	expect "round $round: nodes 1-2 accept a change" vm_add_on 2 "after-round-$round"
done
expect "nodes 1 and 2 agree" nodes_agree 1 2
echo "node 1 restarted a sync $(grep -c "membership changed during the sync" "$log1" || true) time(s) because node 3 died in it"

node_start 3
expect "node 3 finally joins and catches up" wait_for 60 "node 3 synced" node_sees 3 3 true
expect "all three agree" wait_for 60 "digests to agree" nodes_agree 1 2 3
expect_eq "node 3 has every group" "$(vm_count 1)" "$(vm_count 3)"
expect_eq "vm list --json returns all 5005 groups (larger than the first IPC buffer)" 5005 "$(vm_count 3)"

finish
