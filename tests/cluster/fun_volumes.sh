#!/bin/bash
# Cluster shared volumes and image locks: a directory every node sees is
# registered as a volume; a running VM's disk image on it is locked by
# that VM on its owner, shown by volume show and vm show on every node; a
# second VM using the same image is refused naming the holder; bad input
# is refused in one line with the state unchanged.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns
command -v qemu-system-x86_64 >/dev/null || harness_skip "qemu-system-x86_64 is not installed"

export VMC_DAEMON_ARGS="--vm-memory=1024 --stop-timeout=2"
guest_cluster_up 3
node_exec 1 clusterctl cluster set accel=tcg fence_method=none lease_io_timeout_s=1 >/dev/null

vol=$HARNESS_RUNDIR/csv1
mkdir -p "$vol" "$HARNESS_RUNDIR/elsewhere"
truncate -s 1M "$vol/web1.img" "$HARNESS_RUNDIR/elsewhere/db1.img"
: >"$HARNESS_RUNDIR/plain-file"

node_exec 2 clusterctl volume add csv1 "$vol/../csv1" >/dev/null
expect_eq "the volume's path is resolved" "$vol" "$(node_exec 3 clusterctl --json volume show csv1 | jq -r .path)"
expect_eq "its coordinator is the node that added it" node2 \
	"$(node_exec 1 clusterctl --json volume show csv1 | jq -r .coordinator)"
# healthy_everywhere NODE: NODE's copy says every node sees csv1 ok
healthy_everywhere() {
	[[ $(node_exec "$1" clusterctl --json volume show csv1 | jq '[.seen[] | select(.health == "ok")] | length') == 3 ]]
}
expect "every node reports csv1 healthy" wait_for 30 "csv1 ok on 3 nodes" healthy_everywhere 1
# slots_valid NODE: the nodes whose slot NODE reads valid and renewed in the last 5 s
slots_valid() {
	node_exec "$1" clusterctl --json volume show csv1 |
		jq -r '[.from_here.slots[] | select(.slot == "valid" and .changed_ms_ago < 5000) | .node] | join(" ")'
}
renewing_seen_by() { [[ $(slots_valid "$1") == "node1 node2 node3" ]]; }
expect "node 2 reads every node's lease renewing" wait_for 30 "3 renewing slots" renewing_seen_by 2
expect_eq "the lease file has its header and a slot per node" "VMCHEAD1 VMCSLOT1" \
	"$(head -c 8 "$vol/.vmcluster-leases") $(dd if="$vol/.vmcluster-leases" bs=4096 skip=3 count=1 status=none | head -c 8)"
# No watchdog here: each daemon says so in one line, and leases fence nothing.
grep -q "watchdog /run/vmc-no-watchdog: cannot open it (No such file or directory): this node holds no armed watchdog" \
	"$(node_dir 2)/log/vmclusterd.log" && pass "a missing watchdog device is one clear warning" ||
	fail "no warning about the missing watchdog device"
expect_eq "without watchdogs, leases fence nothing: fence_method none stands" none "$(node_exec 1 clusterctl --json status | jq -r .fencing_by)"
# A damaged slot (its owner's daemon down, so nothing writes it meanwhile):
# the readers say so; its owner's first renewal writes it again.
damaged_seen() { grep -q "volume csv1: the lease slot of node3 is damaged (lease slot: no VMCSLOT1 magic" "$(node_dir 1)/log/vmclusterd.log"; }
node_kill_daemon 3
head -c 4096 /dev/urandom | dd of="$vol/.vmcluster-leases" bs=4096 seek=3 conv=notrunc status=none
expect "node 1 warns that node 3's slot is damaged" wait_for 20 "the damaged-slot warning" damaged_seen
node_start_daemon 3
expect "node 3 rejoins" wait_for 60 "node 3 synced" node_sees 3 3 true
expect "node 3's renewals repair its slot" wait_for 20 "3 renewing slots again" renewing_seen_by 1
before=$(node_exec 1 clusterctl --json status | jq -r .config_version)
refused_on 1 1 "already exists" clusterctl volume add csv1 "$HARNESS_RUNDIR/elsewhere"
refused_on 1 1 "overlaps volume csv1" clusterctl volume add inner "$vol"
refused_on 1 2 "No such file or directory" clusterctl volume add ghost /nonexistent/dir
refused_on 1 2 "is not a directory" clusterctl volume add plain "$HARNESS_RUNDIR/plain-file"
refused_on 1 2 "not a valid volume name" clusterctl volume add "bad name" "$HARNESS_RUNDIR/elsewhere"
refused_on 1 1 "no volume named 'ghost'" clusterctl volume show ghost
refused_on 1 1 "no volume named 'ghost'" clusterctl volume remove ghost
refused_on 1 1 "no node named 'node9'" clusterctl volume move csv1 node9
refused_on 1 2 "usage" clusterctl volume add onlyname
expect_eq "refusals changed nothing" "$before" "$(node_exec 1 clusterctl --json status | jq -r .config_version)"

guest_vm_disk web1 node3 "$vol/web1.img" |
	node_exec 1 clusterctl vm add - --start --wait >/dev/null
expect "web1 online on node3" vm_online_on web1 node3
for n in 1 2 3; do
	expect_eq "node $n: volume show lists web1's lock held on node3" "$vol/web1.img web1 node3" \
		"$(node_exec "$n" clusterctl --json volume show csv1 | jq -r '.image_locks[] | "\(.image) \(.vm) \(.node)"')"
done
expect_eq "vm show lists the lock" "csv1" "$(node_exec 2 clusterctl --json vm show web1 | jq -r '.locks[0].volume')"
node_exec 1 clusterctl volume show csv1 | grep -q "web1.img.*vm web1.*on node3" ||
	fail "volume show's text does not list the lock"

guest_vm_disk web2 node1 "$vol/web1.img" | node_exec 1 clusterctl vm add - >/dev/null
refused_on 2 1 "image $vol/web1.img on volume csv1 is locked by vm web1 on node3" clusterctl vm start web2
expect_eq "web2 stays offline" offline "$(node_exec 1 clusterctl --json vm show web2 | jq -r .state)"
refused_on 1 2 "is on no volume" sh -c "printf '%s' '{\"name\":\"db1\",\"memory_mib\":64,\"disks\":[{\"path\":\"$HARNESS_RUNDIR/elsewhere/db1.img\"}]}' | clusterctl vm add -"
refused_on 1 1 "volume csv1 is used by vm web1" clusterctl volume remove csv1

node_exec 1 clusterctl vm stop web1 --wait >/dev/null
expect_eq "stopped, web1's lock is released" 0 \
	"$(node_exec 1 clusterctl --json volume show csv1 | jq '.image_locks | length')"
node_exec 1 clusterctl vm start web2 --wait >/dev/null
expect_eq "web2 takes the lock once web1 let go" "web2" \
	"$(node_exec 3 clusterctl --json volume show csv1 | jq -r '.image_locks[0].vm')"
expect "all nodes agree" nodes_agree 1 2 3

finish
