#!/bin/bash
# A 2-node cluster with corosync's two_node: 1. One node powered off: the
# survivor stays quorate, as corosync says, fences the lost node and runs
# its VM.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns
command -v qemu-system-x86_64 >/dev/null || harness_skip "qemu-system-x86_64 is not installed"

export VMC_DAEMON_ARGS="--vm-memory=1024 --stop-timeout=2"
export HARNESS_QUORUM_OPTIONS="two_node: 1"
guest_cluster_up 2
node_exec 1 clusterctl cluster set accel=tcg fence_method=agent fence_agent="$HARNESS_RUNDIR/fence_agent" >/dev/null
guest_vm web1 node2 | node_exec 1 clusterctl vm add - --start --wait >/dev/null
expect "web1 online on node2" vm_online_on web1 node2

node_poweroff 2
expect "node 1 alone is quorate (two_node) and synced" wait_for 30 "node 1 quorate alone" node_sees 1 1 true
expect "node 1 fences node 2" wait_for 60 "fencing of node2" \
	grep -q "node node2 fenced" "$(node_dir 1)/log/vmclusterd.log"
expect "web1 runs on node 1" wait_for 120 "web1 online on node1" vm_online_on web1 node1
vm_def alone | node_exec 1 clusterctl vm add - >/dev/null
expect_eq "node 1 alone takes changes" 2 "$(vm_count 1)"

node_start 2
expect "node 2 rejoins" wait_for 60 "node 2 synced" node_sees 2 2 true
expect "both agree" wait_for 60 "digests to agree" nodes_agree 1 2
expect_eq "node 2 has node 1's change" 2 "$(vm_count 2)"

finish
