#!/bin/bash
# Three things of one cluster's life, in turn:
#  - a node whose corosync runs but whose vmclusterd does not shows as
#    daemon-down (not down) in status and node list;
#  - a node whose state an operator moved aside (as the log advises) comes
#    back with no history, takes the cluster's state and loses nothing;
#  - the corosync nodelist shrunk from 3 nodes to 2 and reloaded
#    (corosync-cfgtool -R): quorum is computed from 2, no daemon restarted.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns

cluster_up 3
for i in 1 2 3; do wait_for 30 "node $i quorate" node_sees "$i" 3 true; done
for k in $(seq 1 12); do vm_add_on $((1 + k % 3)) "keep$k"; done
node_exec 2 clusterctl vm set keep5 memory_mib=128 >/dev/null
wait_for 30 "digests to agree" nodes_agree 1 2 3
node_exec 1 clusterctl --json vm list | jq -S .vms >"$HARNESS_RUNDIR/before.json"

node3_state() { # NODE: node 3's state word as NODE sees it, in status and node list
	echo "$(status_field "$1" '.nodes[] | select(.name == "node3") | .state')" \
		"$(node_exec "$1" clusterctl --json node list | jq -r '.[] | select(.name == "node3") | .state')"
}
node3_daemon_down() { [[ $(node3_state 1) == "daemon-down daemon-down" ]]; }
node_kill_daemon 3
expect "node 3 shows daemon-down in status and node list" wait_for 30 "node 3 daemon-down" node3_daemon_down

# Wiped: the state moved aside, the daemon started afresh.
node_exec 3 bash -c 'mkdir /var/lib/vmcluster/aside &&
	for f in state.json journal.log; do [[ ! -e /var/lib/vmcluster/$f ]] || mv /var/lib/vmcluster/$f /var/lib/vmcluster/aside/; done'
expect "node 3's state is gone" node_exec 3 bash -c '! ls /var/lib/vmcluster/*.json /var/lib/vmcluster/*.log 2>/dev/null | grep -q .'
node_start_daemon 3
expect "the wiped node rejoins" wait_for 60 "node 3 synced" node_sees 3 3 true
expect "all three agree after the wiped node's return" wait_for 60 "digests to agree" nodes_agree 1 2 3
for i in 1 2 3; do
	node_exec "$i" clusterctl --json vm list | jq -S .vms >"$HARNESS_RUNDIR/after$i.json"
	expect "node $i lists every group it had before the wipe" cmp -s "$HARNESS_RUNDIR/before.json" "$HARNESS_RUNDIR/after$i.json"
done
expect_eq "keep5's change survived" 128 "$(node_exec 3 clusterctl --json vm show keep5 | jq .definition.memory_mib)"
vm_add_on 3 after-wipe
expect_eq "node 1 holds the wiped node's acknowledged change" 13 "$(vm_count 1)"

# The nodelist shrinks to nodes 1 and 2; nothing restarts.
expected_votes_is() { [[ $(status_field "$1" .expected_votes) == "$2" ]]; }
node_list_length_is() { [[ $(node_exec "$1" clusterctl --json node list | jq length) == "$2" ]]; }
pids_before="$(node_pid_of 1 vmclusterd) $(node_pid_of 2 vmclusterd)"
node_stop 3
nodelist_set 1 2
for i in 1 2; do
	expect "corosync expects 2 votes on node $i" wait_for 30 "expected votes 2 on node $i" expected_votes_is "$i" 2
	expect "node $i's daemon lists the 2 nodes left" wait_for 30 "a node list of 2" node_list_length_is "$i" 2
done
expect "nodes 1-2 are quorate and synced" wait_for 30 "node 1 quorate" node_sees 1 2 true
vm_add_on 1 after-shrink
expect_eq "nodes 1-2 take changes" 14 "$(vm_count 2)"
expect_eq "no daemon restarted" "$pids_before" "$(node_pid_of 1 vmclusterd) $(node_pid_of 2 vmclusterd)"

finish
