#!/bin/bash
# 10,000 changes go through node 1 while nodes 2 and 3 are powered off and
# started again at random (sometimes both, so node 1 loses quorum and its
# changes are refused and retried); afterwards every node reports the same
# state_digest. VMC_STRESS_CHANGES overrides the count, VMC_STRESS_RATE the
# pace, VMC_STRESS_SEED the random sequence (printed, so a failure can be
# replayed).
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

# Paced so the load spans several power cycles (each takes corosync's
# detection, about 3.5 s, plus a rejoin).
node_exec 1 "$VMC_BUILDDIR/bench/vmc-load" --count "$changes" --window 16 --prefix stress \
	--seed "$seed" --rate "${VMC_STRESS_RATE:-250}" --timeout 1200 >"$HARNESS_RUNDIR/load.out" 2>&1 &
load=$!

# changes_passed FROM N: node 1 applied N changes since FROM, or the load is over
changes_passed() {
	kill -0 "$load" 2>/dev/null || return 0
	[[ $(status_field 1 .config_version) -ge $(($1 + $2)) ]]
}

# While the load runs, power off node 2, node 3, or both (then node 1 loses
# quorum and the load's changes are refused and retried), let changes pass
# (or, without quorum, until node 1 reports it refuses them), power them
# back on and wait until they have rejoined.
cycles=0
quorum_losses=0
while kill -0 "$load" 2>/dev/null; do
	case $((RANDOM % 5)) in
	0) victims="2 3" ;;
	1 | 2) victims=2 ;;
	*) victims=3 ;;
	esac
	for v in $victims; do node_poweroff "$v"; done
	if [[ $victims == "2 3" ]]; then
		wait_for 30 "node 1 to lose quorum" node_sees 1 1 false || true
		quorum_losses=$((quorum_losses + 1))
	else
		wait_for 30 "node 1 to see node $victims leave" node_sees 1 2 true || true
		start=$(status_field 1 .config_version)
		wait_for 60 "changes while node $victims is off" changes_passed "$start" $((50 + RANDOM % 400)) || true
	fi
	for v in $victims; do node_start "$v"; done
	for v in $victims; do wait_for 60 "node $v to rejoin" node_sees "$v" 3 true || true; done
	cycles=$((cycles + 1))
	echo "stress: cycle $cycles: powered off node(s) $victims at config_version $(status_field 1 .config_version)"
	[[ $cycles -lt 100 ]] || break
done

set +e
wait "$load"
rc=$?
set -e
cat "$HARNESS_RUNDIR/load.out"
expect_eq "the load generator got all its changes applied" 0 "$rc"
expect "nodes were power-cycled during the load ($cycles cycles, $quorum_losses without quorum)" test "$cycles" -ge 3
expect "all three nodes report the same state_digest" wait_for 120 "digests to agree" nodes_agree 1 2 3
for i in 1 2 3; do
	echo "node $i: $(status_field "$i" '"config_version \(.config_version), digest \(.state_digest)"')"
done

finish
