#!/bin/bash
# No acknowledged change is lost (lib/replica.h, "acknowledged"). Three
# clients add groups in tight loops on node 3, which is then cut off from
# the other two, three times. After the heals, every add a client saw
# acknowledged (exit 0) is on all three nodes; every add answered "not applied" (exit 4, no
# quorum; exit 6, membership kept changing) is on none; an add whose answer
# did not come in time (exit 7) may be either, and the client said its
# outcome is unknown. While cut off, node 3 still answers reads, marked
# stale, since the moment it left the quorate view.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns

cluster_up 3
for i in 1 2 3; do wait_for 30 "node $i quorate" node_sees "$i" 3 true; done

results=$HARNESS_RUNDIR/adds.txt
: >"$results"
count_rc() { awk -v rc="$1" '$2 == rc' "$results" | wc -l; }
count_at_least() { (($(count_rc "$1") >= $2)); }
refused_at_least() { (($(count_rc 4) + $(count_rc 6) + $(count_rc 7) >= $1)); }

# A client: one line per add, "NAME EXIT MESSAGE" (short lines: appends do not interleave).
client() {
	local k=0 out rc
	while [[ ! -e $HARNESS_RUNDIR/stop ]]; do
		k=$((k + 1))
		set +e
		out=$(vm_def "c$1-$k" | node_exec 3 clusterctl --timeout 4 vm add - 2>&1 >/dev/null)
		rc=$?
		set -e
		echo "c$1-$k $rc ${out//$'\n'/ }" >>"$results"
	done
}
clients=()
for c in 1 2 3; do
	client "$c" &
	clients+=($!)
done

expect "the clients have 5 adds acknowledged before the cut" wait_for 30 "5 acknowledged adds" count_at_least 0 5
acked_before=$(count_rc 0)
node_partition 3
expect "node 3 loses quorum" wait_for 30 "node 3 to lose quorum" node_sees 3 1 false
expect "the clients are refused on the cut-off node" wait_for 30 "a refusal" refused_at_least 1

# Reads on the minority answer, and say they may be stale.
list=$(node_exec 3 clusterctl --json vm list)
expect_eq "vm list --json on node 3 says stale" true "$(jq -r .stale <<<"$list")"
expect "vm list --json on node 3 says since when" test -n "$(jq -r '.stale_since // empty' <<<"$list")"
expect_eq "status --json on node 3 says stale" true "$(status_field 3 .stale)"
expect "vm list (text) on node 3 starts with STALE" grep -q '^STALE:' <<<"$(node_exec 3 clusterctl vm list)"
expect_eq "nodes 1-2 are not stale" false "$(status_field 1 .stale)"

node_heal 3
expect "node 3 rejoins with quorum" wait_for 60 "node 3 quorate" node_sees 3 3 true
acked_then=$(count_rc 0)
expect "the clients are acknowledged again after the heal" \
	wait_for 60 "an acknowledged add after the heal" count_at_least 0 $((acked_then + 2))
# Two more cuts while the clients run: more adds caught in flight.
for cut in 2 3; do
	node_partition 3
	expect "cut $cut: node 3 loses quorum" wait_for 30 "node 3 to lose quorum" node_sees 3 1 false
	node_heal 3
	expect "cut $cut: node 3 rejoins with quorum" wait_for 60 "node 3 quorate" node_sees 3 3 true
	acked_then=$(count_rc 0)
	expect "cut $cut: acknowledged again after the heal" \
		wait_for 60 "an acknowledged add after the heal" count_at_least 0 $((acked_then + 2))
done
touch "$HARNESS_RUNDIR/stop"
wait "${clients[@]}"
expect "all three agree" wait_for 60 "digests to agree" nodes_agree 1 2 3
expect_eq "node 3 is no longer stale" false "$(status_field 3 .stale)"

for i in 1 2 3; do
	node_exec "$i" clusterctl --json vm list | jq -r '.vms[].name' | sort >"$HARNESS_RUNDIR/names$i"
done
lost=0 appeared=0 unknown=0 unknown_unsaid=0
while read -r name rc msg; do
	for i in 1 2 3; do
		if grep -qx "$name" "$HARNESS_RUNDIR/names$i"; then present=1; else present=0; fi
		case $rc in
		0) ((present)) || { lost=$((lost + 1)); echo "lost on node $i: $name" >&2; } ;;
		4 | 6) ((!present)) || { appeared=$((appeared + 1)); echo "appeared on node $i: $name ($msg)" >&2; } ;;
		esac
	done
	if [[ $rc == 7 ]]; then
		unknown=$((unknown + 1))
		[[ $msg == *"outcome unknown"* ]] || unknown_unsaid=$((unknown_unsaid + 1))
	fi
done <"$results"
others=$(awk '$2 != 0 && $2 != 4 && $2 != 6 && $2 != 7' "$results" | wc -l)
echo "adds: $(wc -l <"$results") in all, $(count_rc 0) acknowledged ($acked_before before the cut)," \
	"$(count_rc 4) no quorum, $(count_rc 6) not applied, $unknown outcome unknown"
expect_eq "every acknowledged add is on all three nodes" 0 "$lost"
expect_eq "no add answered not applied is on any node" 0 "$appeared"
expect_eq "every add that timed out said its outcome is unknown" 0 "$unknown_unsaid"
expect_eq "every add ended acknowledged, not applied or unknown" 0 "$others"

finish
