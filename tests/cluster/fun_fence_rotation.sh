#!/bin/bash
# What the safety review found, on real nodes:
#  1. a VM whose start fails on its node (its kernel is missing on that node
#     only) is reported every time (keyed by the start attempt, no local
#     re-spawn before the cluster decides), restarted there once, then
#     failed over to a node where it starts;
#  2. the fence agent fails on the lowest node only: the next member's turn
#     comes, it fences the lost node, the VMs restart; while its agent runs
#     (5 s), `clusterctl status` shows the fencing wait with its age, and
#     `clusterctl dump` returns the daemon's recent log;
#  3. the fence device is gone for good: `clusterctl node confirm-fenced`
#     (root only, refused while the node is a member) recovers its VMs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns
command -v qemu-system-x86_64 >/dev/null || harness_skip "qemu-system-x86_64 is not installed"
command -v setpriv >/dev/null || harness_skip "setpriv (util-linux) is missing"
getent group haclient >/dev/null || harness_skip "group haclient is missing (tools/install-deps creates it)"

export VMC_DAEMON_ARGS="--vm-memory=1024 --stop-timeout=2"
guest_cluster_up 3

# A fence agent that takes 5 s, then powers the node off with the harness's.
slow=$HARNESS_RUNDIR/fence_slow
printf '#!/bin/bash\nin=$(cat)\nsleep 5\nexec %s <<<"$in"\n' "$HARNESS_RUNDIR/fence_agent" >"$slow"
broken=$HARNESS_RUNDIR/fence_broken
printf '#!/bin/bash\ncat >/dev/null\necho "fence_broken: no route to the PDU" >&2\nexit 1\n' >"$broken"
chmod 755 "$slow" "$broken"
node_exec 1 clusterctl cluster set accel=tcg fence_method=agent fence_agent="$slow" >/dev/null

vm_json() { # NAME PREFERRED...
	local pref
	pref=$(printf '"%s",' "${@:2}")
	printf '{"name":"%s","memory_mib":128,"boot":{"kernel":"%s/vmlinux","initrd":"%s/initrd.img","cmdline":"%s"},"preferred_owners":[%s],"failover":{"max_failures":5,"period_s":3600}}\n' \
		"$1" "$guest" "$guest" "$(cat "$guest/cmdline")" "${pref%,}"
}
vm_field() { node_exec "${3:-1}" clusterctl --json vm show "$1" | jq -r ".$2"; }
vm_online_on() { [[ $(node_exec "${3:-1}" clusterctl --json vm show "$1" | jq -r '.state + " " + .owner') == "online $2" ]]; }
log_of() { echo "$(node_dir "$1")/log/vmclusterd.log"; }

# ---- 1. the start fails on node1 only: its kernel is missing there
node_exec 1 mount -t tmpfs vmc-nokernel "$guest"
vm_json app1 node1 node2 | node_exec 2 clusterctl vm add - --start >/dev/null
expect "app1 fails over to node2, where its kernel is" wait_for 120 "app1 online on node2" vm_online_on app1 node2 2
starts=$(grep -c "vm app1: starting on node1" "$(log_of 1)" || true)
expect_eq "node1 started app1 twice (the first start, the cluster's restart), never on its own" 2 "$starts"
reports=$(grep -c "vm app1: reporting start_failed" "$(log_of 1)" || true)
expect_eq "and reported each failure, one per attempt" 2 "$reports"
expect "node1's reports named the missing kernel" grep -q "reporting start_failed.*vmlinux" "$(log_of 1)"
node_exec 1 umount "$guest"

# ---- 2. node3 is lost; the agent fails on node1 (the first fencer) only
failing=$HARNESS_RUNDIR/fence_failing
mkdir -p "$failing"
cp "$broken" "$failing/agent"
node_exec 1 mount --bind "$failing/agent" "$slow"
vm_json web1 node3 node2 | node_exec 1 clusterctl vm add - --start --wait >/dev/null
expect "web1 online on node3" vm_online_on web1 node3
node_poweroff 3
fencing_wait_aged() {
	node_exec 2 clusterctl --json status | jq -e '[.waits[] | select(.kind == "fencing" and .node == "node3" and .fencer == "node2" and (.age_s // 0) >= 1)] | length > 0' >/dev/null
}
expect "status on node2 shows its fencing of node3 with the agent's age" wait_for 60 "node2's fencing wait" fencing_wait_aged
node_exec 2 clusterctl status | sed -n '/^Waiting:/,/^$/p'
expect "node1's attempt failed and was announced" grep -q "fencing attempt 1 failed" "$(log_of 1)"
expect "node2 fenced node3 on attempt 2" wait_for 30 "node3 fenced by node2" grep -q "node node3 fenced (agent, attempt 2)" "$(log_of 2)"
expect "web1 runs again, on node2 (node3 is gone)" wait_for 90 "web1 online on node2" vm_online_on web1 node2
dump=$(node_exec 2 clusterctl dump)
expect "clusterctl dump returns the recent log, with the fencing in it" grep -q "fencing it with" <<<"$dump"
expect "and debug lines the syslog would not have" grep -q " debug: " <<<"$dump"
node_exec 1 umount "$slow"

# ---- 3. the fence device is gone: only an operator can say node3 is off
node_start 3
for i in 1 2 3; do wait_for 60 "node $i synced" node_sees "$i" 3 true; done
node_exec 1 clusterctl cluster set fence_agent="$broken" >/dev/null
vm_json db1 node3 | node_exec 1 clusterctl vm add - --start --wait >/dev/null
expect "db1 online on node3" vm_online_on db1 node3
refused 1 "is a member" node_exec 1 clusterctl node confirm-fenced node3
node_poweroff 3
attempts_failed() { grep -q "fencing attempt 2 failed" "$(log_of 1)" "$(log_of 2)"; }
expect "the fence agent fails, attempt after attempt" wait_for 60 "two failed attempts" attempts_failed
expect_eq "db1 is unknown while node3 cannot be fenced (not 'online on node3')" unknown "$(vm_field db1 state)"
haclient=$(getent group haclient | cut -d: -f3)
refused 5 "needs root" node_exec 1 setpriv --reuid="$(id -u nobody)" --regid="$haclient" --clear-groups \
	clusterctl node confirm-fenced node3
node_exec 2 clusterctl node confirm-fenced node3 >/dev/null
expect "confirmed by hand, db1 runs again elsewhere" wait_for 90 "db1 online elsewhere" vm_online_on db1 node1
expect "every node logged the confirmation loudly" grep -q "confirmed fenced by hand" "$(log_of 1)"
expect "and the one asked warned on its own" grep -q "confirmed fenced BY HAND" "$(log_of 2)"

finish
