#!/bin/bash
# Three real corosync nodes with a vmclusterd each: every node sees three
# nodes up and quorum, and the listings agree.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns

cluster_up 3

for i in 1 2 3; do
	expect "node $i sees 3 nodes up and quorate" wait_for 30 "node $i to see 3 nodes" node_sees "$i" 3 true
done

names=$(node_exec 1 clusterctl node list --json | jq -r '[.[].name] | join(",")')
expect_eq "node list names the three nodes" "node1,node2,node3" "$names"
ids=$(node_exec 2 clusterctl --json node list | jq -r '[.[].id] | join(",")')
expect_eq "node ids come from the corosync nodelist" "1,2,3" "$ids"

out=$(node_exec 3 clusterctl status)
expect "status (text) says quorate" grep -q "Quorum:  yes" <<<"$out"
expect "status (text) lists node3 up" grep -Eq "^node3 +3 .* up +0 +0/[0-9]+ MiB +active$" <<<"$out"

expect "state digests agree on all nodes" nodes_agree 1 2 3
expect_eq "status --json has config_version" "number" "$(status_field 1 '.config_version | type')"
expect_eq "status --json has a 64-hex state_digest" "64" "$(status_field 1 '.state_digest | length')"

finish
