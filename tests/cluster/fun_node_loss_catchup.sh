#!/bin/bash
# 200 VM groups added from all three nodes at once end up byte-identical
# everywhere; a node powered off while 50 more are added catches up when
# it returns.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns

cluster_up 3
for i in 1 2 3; do wait_for 30 "node $i quorate" node_sees "$i" 3 true; done

add_range() { # NODE FIRST LAST
	local k
	for ((k = $2; k <= $3; k++)); do
		vm_add_on "$1" "vm$k" || echo "add vm$k on node $1 failed" >&2
	done
}

# Interleaved names so the three writers collide in the total order.
add_range 1 1 67 &
p1=$!
add_range 2 68 134 &
p2=$!
add_range 3 135 200 &
p3=$!
wait $p1 $p2 $p3

expect "all three nodes agree after 200 concurrent adds" wait_for 60 "digests to agree" nodes_agree 1 2 3
for i in 1 2 3; do
	node_exec "$i" clusterctl --json vm list >"$HARNESS_RUNDIR/list$i.json"
done
expect_eq "200 groups listed" 200 "$(jq ".vms | length" "$HARNESS_RUNDIR/list1.json")"
expect "vm list --json is byte-identical on nodes 1 and 2" cmp -s "$HARNESS_RUNDIR/list1.json" "$HARNESS_RUNDIR/list2.json"
expect "vm list --json is byte-identical on nodes 1 and 3" cmp -s "$HARNESS_RUNDIR/list1.json" "$HARNESS_RUNDIR/list3.json"

# A duplicate name is refused on every node alike.
if vm_add_on 2 vm5 2>/dev/null; then fail "a duplicate name was accepted"; else pass "a duplicate name is refused"; fi

node_poweroff 3
expect "nodes 1-2 see node 3 down and keep quorum" wait_for 30 "node 3 to leave" node_sees 1 2 true
add_range 1 201 225
add_range 2 226 250
expect_eq "node 1 lists 250 groups while node 3 is off" 250 "$(vm_count 1)"

node_start 3
expect "node 3 rejoins" wait_for 60 "node 3 to rejoin" node_sees 3 3 true
expect "node 3 converges to the others' state" wait_for 60 "digests to agree" nodes_agree 1 2 3
node_exec 1 clusterctl --json vm list >"$HARNESS_RUNDIR/after1.json"
node_exec 3 clusterctl --json vm list >"$HARNESS_RUNDIR/after3.json"
expect "node 3's vm list --json is byte-identical to node 1's" cmp -s "$HARNESS_RUNDIR/after1.json" "$HARNESS_RUNDIR/after3.json"
expect_eq "node 3 lists 250 groups" 250 "$(jq ".vms | length" "$HARNESS_RUNDIR/after3.json")"

finish
