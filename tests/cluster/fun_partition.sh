#!/bin/bash
# A partitioned node refuses changes with a no-quorum error; the majority
# goes on; after the heal all three agree on the majority's state.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns

cluster_up 3
for i in 1 2 3; do wait_for 30 "node $i quorate" node_sees "$i" 3 true; done
vm_add_on 1 before-split
version_before=$(status_field 3 .config_version)

node_partition 3
expect "node 3 loses quorum" wait_for 30 "node 3 to lose quorum" node_sees 3 1 false
expect "nodes 1-2 keep quorum" wait_for 30 "nodes 1-2 quorate" node_sees 1 2 true

set +e
err=$(vm_def lonely | node_exec 3 clusterctl vm add - 2>&1 >/dev/null)
rc=$?
set -e
expect_eq "vm add on the partitioned node exits 4 (no quorum)" 4 "$rc"
expect "the refusal says no quorum" grep -q "no quorum" <<<"$err"
expect_eq "node 3's config_version did not move" "$version_before" "$(status_field 3 .config_version)"

for k in 1 2 3 4 5; do vm_add_on $((1 + k % 2)) "during-split-$k"; done
expect_eq "nodes 1-2 accepted 5 changes" 6 "$(vm_count 1)"

node_heal 3
expect "node 3 rejoins with quorum" wait_for 60 "node 3 quorate" node_sees 3 3 true
expect "all three agree after the heal" wait_for 60 "digests to agree" nodes_agree 1 2 3
expect_eq "node 3 has the majority's groups" 6 "$(vm_count 3)"
if node_exec 3 clusterctl vm show lonely >/dev/null 2>&1; then
	fail "the change refused without quorum appeared"
else
	pass "the change refused without quorum never appears"
fi

finish
