#!/bin/bash
# Every daemon and corosync stopped, then started again: the cluster comes
# back with the state it had (same groups, and the config_version it had
# but for the three changes of the daemons announcing their new
# incarnations, one each).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns

cluster_up 3
for i in 1 2 3; do wait_for 30 "node $i quorate" node_sees "$i" 3 true; done
for k in $(seq 1 20); do vm_add_on $((1 + k % 3)) "keep$k"; done
node_exec 2 clusterctl vm set keep7 memory_mib=128 priority=high >/dev/null
node_exec 3 clusterctl vm remove keep9 >/dev/null
wait_for 30 "digests to agree" nodes_agree 1 2 3
node_exec 1 clusterctl --json vm list >"$HARNESS_RUNDIR/before.json"
version=$(status_field 1 .config_version)

for i in 1 2 3; do node_stop "$i"; done
for i in 1 2 3; do
	expect "state file of node $i exists after stop" node_exec "$i" test -s /var/lib/vmcluster/state.json
done
for i in 1 2 3; do node_start "$i"; done

for i in 1 2 3; do
	expect "node $i back with quorum" wait_for 60 "node $i quorate" node_sees "$i" 3 true
done
expect "all three agree after the cold start" wait_for 60 "digests to agree" nodes_agree 1 2 3
for i in 1 2 3; do
	node_exec "$i" clusterctl --json vm list >"$HARNESS_RUNDIR/after$i.json"
	expect "node $i lists the same groups as before the restart" cmp -s "$HARNESS_RUNDIR/before.json" "$HARNESS_RUNDIR/after$i.json"
done
expect_eq "config_version survived (plus one announcement per new daemon)" "$((version + 3))" \
	"$(status_field 2 .config_version)"
expect_eq "keep7's change survived" 128 "$(node_exec 3 clusterctl --json vm show keep7 | jq .definition.memory_mib)"

finish
