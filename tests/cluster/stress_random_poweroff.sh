#!/bin/bash
# 10,000 changes go through node 1 while nodes 2 and 3 are powered off and
# started again at random; afterwards every node reports the same
# state_digest. VMC_STRESS_CHANGES overrides the count, VMC_STRESS_SEED the
# random sequence (printed, so a failure can be replayed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns

changes=${VMC_STRESS_CHANGES:-10000}
seed=${VMC_STRESS_SEED:-$$}
echo "stress: $changes changes, seed $seed"
RANDOM=$seed

cluster_up 3
for i in 1 2 3; do wait_for 30 "node $i quorate" node_sees "$i" 3 true; done

node_exec 1 "$VMC_BUILDDIR/bench/vmc-load" --count "$changes" --window 16 --prefix stress \
	--seed "$seed" --timeout 1200 >"$HARNESS_RUNDIR/load.out" 2>&1 &
load=$!

# changes_passed FROM N: node 1 applied N changes since FROM, or the load is over
changes_passed() {
	kill -0 "$load" 2>/dev/null || return 0
	[[ $(status_field 1 .config_version) -ge $(($1 + $2)) ]]
}

# While the load runs: power a random one of nodes 2 and 3 off, let a few
# hundred changes pass it by, bring it back, wait until it has rejoined.
cycles=0
while kill -0 "$load" 2>/dev/null; do
	victim=$((2 + RANDOM % 2))
	node_poweroff "$victim"
	wait_for 30 "node 1 to see node $victim leave" node_sees 1 2 true || true
	start=$(status_field 1 .config_version)
	wait_for 60 "changes while node $victim is off" changes_passed "$start" $((100 + RANDOM % 500)) || true
	node_start "$victim"
	wait_for 60 "node $victim to rejoin" node_sees "$victim" 3 true || true
	cycles=$((cycles + 1))
	echo "stress: cycle $cycles: node $victim was off from config_version $start"
	[[ $cycles -lt 200 ]] || break
done

set +e
wait "$load"
rc=$?
set -e
cat "$HARNESS_RUNDIR/load.out"
expect_eq "the load generator got all its changes applied" 0 "$rc"
expect "nodes were power-cycled during the load" test "$cycles" -ge 1
expect "all three nodes report the same state_digest" wait_for 120 "digests to agree" nodes_agree 1 2 3
for i in 1 2 3; do
	echo "node $i: $(status_field "$i" '"config_version \(.config_version), digest \(.state_digest)"')"
done

finish
