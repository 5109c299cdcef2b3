#!/bin/bash
# Bad input gets one clear line and a non-zero exit, and changes nothing:
# every broken definition in tests/unit/data/invalid (each naming the field
# it expects), unknown nodes, bad arguments, garbage IPC requests.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns
data=$here/../unit/data

cluster_up 3
for i in 1 2 3; do wait_for 30 "node $i quorate" node_sees "$i" 3 true; done
vm_add_on 1 existing
version=$(status_field 1 .config_version)
node_exec 1 clusterctl --json vm list >"$HARNESS_RUNDIR/before.json"

n=0
while IFS=$'\t' read -r file substring; do
	[[ -n $file ]] || continue
	refused_on $((1 + n % 3)) 2 "$substring" clusterctl vm add "$data/invalid/$file"
	n=$((n + 1))
done <"$data/invalid/EXPECTED"
expect "at least 15 broken definitions were tried" test "$n" -ge 15

# Checked by the daemon, not the file's syntax: node names must exist.
sed 's/"node1"/"node9"/' <<<"$(vm_def unknown-owner)" >"$HARNESS_RUNDIR/unknown-owner.json"
refused_on 2 2 "field 'preferred_owners': 'node9' is not a cluster node" clusterctl vm add "$HARNESS_RUNDIR/unknown-owner.json"
refused_on 1 1 "already exists" sh -c "$(declare -f vm_def); vm_def existing | clusterctl vm add -"
refused_on 1 2 "cannot read" clusterctl vm add /nonexistent.json
refused_on 1 1 "no vm named 'ghost'" clusterctl vm show ghost
refused_on 2 1 "no vm named 'ghost'" clusterctl vm remove ghost
refused_on 3 2 "field 'vcpus'" clusterctl vm set existing vcpus=0
refused_on 3 2 "field 'name': cannot be changed" clusterctl vm set existing name=other
refused_on 3 2 "is not KEY=VALUE" clusterctl vm set existing memory_mib
refused_on 1 2 "unknown command" clusterctl frobnicate
refused_on 1 2 "unknown command 'vm frobnicate'" clusterctl vm frobnicate
refused_on 1 2 "wrong number of arguments" clusterctl vm show
refused_on 1 2 "unknown option" clusterctl --bogus status
refused_on 1 2 "--timeout takes" clusterctl --timeout abc status

# Garbage over CPG, from a process that joins the daemons' group: dropped by all.
expect "malformed CPG messages were multicast to the group" node_exec 3 "$VMC_BUILDDIR/tests/cluster/vmc-cpg-garbage"
for i in 1 2 3; do
	expect "node $i logged dropping malformed CPG messages" wait_for 10 "node $i's log of the garbage" \
		grep -q "dropped a message from node3" "$(node_dir "$i")/log/vmclusterd.log"
	expect "node $i is still synced with quorum" wait_for 30 "node $i synced" node_sees "$i" 3 true
done
expect "no VM named evil appeared" bash -c "! grep -q '"evil"' <<<'$(node_exec 1 clusterctl --json vm list)'"

# Garbage over the IPC: the daemon answers each with an error and lives on.
expect "garbage IPC requests each get an error answer" node_exec 2 "$VMC_BUILDDIR/tests/cluster/vmc-ipc-garbage"
expect "vmclusterd on node 2 survived the garbage" node_sees 2 3 true

# (The digest itself moves: the garbage sender's join and leave are membership
# changes, and each primary sync raises the epoch.)
expect_eq "no change was applied by any of the above" "$version" "$(status_field 1 .config_version)"
node_exec 1 clusterctl --json vm list >"$HARNESS_RUNDIR/after.json"
expect "the VM list is unchanged" cmp -s "$HARNESS_RUNDIR/before.json" "$HARNESS_RUNDIR/after.json"
expect "all nodes still agree" nodes_agree 1 2 3

finish
