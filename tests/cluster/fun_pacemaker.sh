#!/bin/bash
# vmcluster under a real pacemaker 2.1 on every node (pacemakerd next to
# corosync and vmclusterd, fencing through the harness's power switch):
# ocf-tester finds no fault in ocf:vmcluster:VMGroup; a VMGroup resource
# with allow-migrate=true moves live when crm_resource --move asks (the
# guest's counter goes on, it never boots there, its image lock moves) and
# stays when the constraint is cleared; clusterctl move-vm moves it through
# pacemaker and leaves no constraint; vmclusterd never acts on the group by
# itself (its QEMU killed: vmcluster says failed, pacemaker's monitor
# restarts it); its node powered off: pacemaker fences it through the
# device and starts it elsewhere, never on two nodes at once; a vmcluster
# group with fence_method=pacemaker is fenced by pacemaker's fencer. Bad
# input changes nothing: a resource naming no group, a move to a node in
# standby, a move with pacemaker down.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns
command -v qemu-system-x86_64 >/dev/null || harness_skip "qemu-system-x86_64 is not installed"
command -v ocf-tester >/dev/null || harness_skip "ocf-tester (resource-agents) is not installed"

export VMC_DAEMON_ARGS="--vm-memory=1024 --stop-timeout=2"
HARNESS_PACEMAKER=1 guest_cluster_up 3
node_exec 1 clusterctl cluster set accel=tcg fence_method=agent fence_agent="$HARNESS_RUNDIR/fence_agent" >/dev/null
agent=/usr/lib/ocf/resource.d/vmcluster/VMGroup

vol=$HARNESS_RUNDIR/csv1
mkdir -p "$vol"
for img in ot1 pm1 vc1; do truncate -s 1M "$vol/$img.img"; done
node_exec 1 clusterctl volume add csv1 "$vol" >/dev/null

pm_vm() { guest_vm_disk "$1" node1 "$vol/$1.img" ',"manager":"pacemaker"'; }
vm_field() { node_exec "${3:-1}" clusterctl --json vm show "$1" | jq -r "$2"; }
lock_node() { node_exec 1 clusterctl --json volume show csv1 | jq -r --arg vm "$1" '.image_locks[] | select(.vm == $vm) | .node'; }
constraints_on() { pcmk_exec "${2:-1}" cibadmin -Q --scope constraints 2>/dev/null | grep -c "rsc=\"$1\"" || true; }
pm_owner() { vm_field "$1" .owner; }
other_node() { # a node number that is none of the given names
	local n
	for n in 1 2 3; do [[ " $* " == *" node$n "* ]] || { echo "$n"; return; }; done
}

# ---- bad definitions: validate-all says OCF_ERR_CONFIGURED, and why
rc=0
out=$(node_exec 1 env OCF_ROOT=/usr/lib/ocf OCF_RESKEY_group=nosuch "$agent" validate-all 2>&1) || rc=$?
expect_eq "validate-all of a group that does not exist: OCF_ERR_CONFIGURED" 6 "$rc"
expect "... and it says so" grep -q "no VM group 'nosuch'" <<<"$out"
guest_vm vmc1 node1 | node_exec 1 clusterctl vm add - >/dev/null
rc=0
out=$(node_exec 1 env OCF_ROOT=/usr/lib/ocf OCF_RESKEY_group=vmc1 "$agent" validate-all 2>&1) || rc=$?
expect_eq "validate-all of a group vmcluster manages: OCF_ERR_CONFIGURED" 6 "$rc"
expect "... naming the fix" grep -q "manager=pacemaker" <<<"$out"
node_exec 1 clusterctl vm remove vmc1 >/dev/null
rc=0
node_exec 1 env OCF_ROOT=/usr/lib/ocf "$agent" validate-all >/dev/null 2>&1 || rc=$?
expect_eq "validate-all without the group parameter: OCF_ERR_CONFIGURED" 6 "$rc"

# ---- ocf-tester, straight against the agent on a group pacemaker has no resource for
pm_vm ot1 | node_exec 1 clusterctl vm add - >/dev/null
out=$(node_exec 1 env OCF_ROOT=/usr/lib/ocf ocf-tester -n ot1 -o group=ot1 "$agent" 2>&1) && rc=0 || rc=$?
expect_eq "ocf-tester passes every test" 0 "$rc"
expect "... and says so" grep -q "passed all tests" <<<"$out"
[[ $rc -eq 0 ]] || echo "$out" >&2
expect_eq "ocf-tester left ot1 stopped" offline "$(vm_field ot1 .state)"
node_exec 1 clusterctl vm remove ot1 >/dev/null

# ---- a VMGroup resource, allow-migrate=true
pm_vm pm1 | node_exec 1 clusterctl vm add - >/dev/null
pcmk_exec 1 cibadmin --create --scope resources --xml-text "$(pcmk_vmgroup_xml pm1 pm1 5s)"
expect "pacemaker starts pm1 through the agent" wait_for 90 "pm1 online where pacemaker runs it" pcmk_vm_started pm1
from=$(pm_owner pm1)
expect_eq "pm1's image lock is its node's" "$from" "$(lock_node pm1)"
started_by_pacemaker() { cat "$(node_dir 1)/log/vmclusterd.log" "$(node_dir 2)/log/vmclusterd.log" "$(node_dir 3)/log/vmclusterd.log" | grep -c "vm pm1 starting: asked to start on $1" || true; }
expect_eq "the agent started it on $from, by name" 1 "$(started_by_pacemaker "$from" | awk '{print ($1 > 0)}')"
from_n=${from#node}
expect "pm1's counter runs on $from" wait_for 60 "pm1 counter on $from" counter_above "$from_n" pm1 10
out=$(node_exec 2 clusterctl vm list)
expect "vm list says where pacemaker runs pm1" grep -q "^pm1: pacemaker runs resource pm1 on $from (target-role Started)" <<<"$out"

vm_watch_start -r
# move VM TO_N how...: a live move checked end to end (the counter goes on, no boot there, the lock follows)
checked_move() {
	local to_n=$1 from_n before booted
	shift
	from_n=$(pm_owner pm1)
	from_n=${from_n#node}
	before=$(counter_of "$from_n" pm1)
	booted=$(booted_on "$to_n" pm1)
	"$@"
	expect "pm1 online on node$to_n, where pacemaker runs it" wait_for 120 "pm1 on node$to_n" pcmk_vm_on pm1 "node$to_n"
	expect "pm1's counter goes on on node$to_n" wait_for 30 "pm1 counter on node$to_n" counter_above "$to_n" pm1 "$before"
	expect_eq "pm1 did not boot on node$to_n (a live migration)" "$booted" "$(booted_on "$to_n" pm1)"
	expect_eq "pm1's image lock moved to node$to_n" "node$to_n" "$(lock_node pm1)"
	expect "the move was vmcluster's live migration, for pacemaker" \
		grep -q "vm pm1 moving live to node$to_n" "$(node_dir "$from_n")/log/vmclusterd.log"
}

# ---- crm_resource --move, then --clear
to_n=$(other_node "$from")
checked_move "$to_n" pcmk_exec 1 crm_resource --move --resource pm1 --node "node$to_n"
pcmk_exec 1 crm_resource --clear --resource pm1 >/dev/null 2>&1
expect_eq "crm_resource --clear removed the constraint" 0 "$(constraints_on pm1)"
expect "pacemaker is idle after the clear" wait_for 60 "pacemaker idle" pcmk_is_idle 1
expect "pm1 stays on node$to_n after the clear" pcmk_vm_on pm1 "node$to_n"

# ---- clusterctl move-vm: through pacemaker, no constraint left
here_now=$(pm_owner pm1)
to_n=$(other_node "$here_now" "$from")
out=$(node_exec 3 clusterctl move-vm pm1 "node$to_n" 2>&1) && rc=0 || rc=$?
expect_eq "clusterctl move-vm pm1 node$to_n succeeds" 0 "$rc"
[[ $rc -eq 0 ]] || echo "$out" >&2
expect "... saying pacemaker moved it" grep -q "moved by pacemaker; the constraint is removed" <<<"$out"
checked_move "$to_n" true
expect_eq "no location constraint remains after move-vm (cibadmin -Q)" 0 "$(constraints_on pm1)"

# ---- a move to a node pacemaker has in standby: refused, nothing changed
owner=$(pm_owner pm1)
sb_n=$(other_node "$owner")
pcmk_exec 1 crm_attribute --node "node$sb_n" --name standby --update on
standby_seen() { node_exec 1 clusterctl --json node list | jq -e --arg n "node$sb_n" '.[] | select(.name == $n) | .pacemaker.standby' >/dev/null; }
expect "node list shows node$sb_n in standby in pacemaker" wait_for 30 "standby in node list" standby_seen
expect "... in its text too" grep -q "^node$sb_n .*(standby in pacemaker)" <<<"$(node_exec 1 clusterctl node list)"
out=$(node_exec 1 clusterctl move-vm pm1 "node$sb_n" 2>&1) && rc=0 || rc=$?
expect_eq "move-vm to a node in standby: refused" 1 "$rc"
expect "... in one line that says why" grep -q "node node$sb_n is in standby in pacemaker.*nothing was changed" <<<"$out"
expect_eq "... no constraint written" 0 "$(constraints_on pm1)"
expect "... pm1 still on $owner" pcmk_vm_on pm1 "$owner"
pcmk_exec 1 crm_attribute --node "node$sb_n" --name standby --update off

vm_watch_stop
expect_eq "over the moves, pm1 never ran on two nodes at once" 0 "$(vm_watch_twice)"
expect_eq "no counter value printed on two nodes" "" "$(counters_on_two pm1 1 2 3)"

# ---- its QEMU killed: vmcluster reports it and does nothing; pacemaker's monitor restarts it
owner=$(pm_owner pm1)
owner_n=${owner#node}
started_before=$(started_by_pacemaker "$owner")
kill -KILL "$(qemu_pids "$owner_n" pm1)"
failed_there() { [[ $(vm_field pm1 '.state + " " + .failed_on') == "failed $owner" ]]; }
expect "vmcluster reports pm1 failed on $owner" wait_for 20 "pm1 failed" failed_there
expect "... and leaves it to pacemaker" grep -q "pacemaker recovers it" <<<"$(vm_field pm1 .reason)"
expect "pacemaker's monitor sees it and restarts it" wait_for 90 "pm1 online again" pcmk_vm_started pm1
expect_eq "vmcluster did not restart it by itself: the agent did, by name" 1 \
	"$(started_by_pacemaker "$(pm_owner pm1)" | awk -v n="$started_before" '{print ($1 > n)}')"
failures=$(pcmk_exec 1 crm_mon -1 --output-as=xml --include=failures)
expect "pacemaker recorded pm1's failed monitor" grep -q 'op_key="pm1_monitor_5000"' <<<"$failures"
grep -q 'op_key="pm1_monitor_5000"' <<<"$failures" || echo "$failures" >&2
pcmk_exec 1 crm_resource --cleanup --resource pm1 >/dev/null 2>&1

# ---- its node powered off: pacemaker fences it through the device, then starts it elsewhere
expect "pacemaker is idle before the power-off" wait_for 60 "pacemaker idle" pcmk_is_idle 1
owner=$(pm_owner pm1)
owner_n=${owner#node}
survivor=$(other_node "$owner")
vm_watch_start
node_poweroff "$owner_n"
expect "pacemaker on node$survivor fences $owner through the device" wait_for 90 "$owner fenced by pacemaker" \
	pcmk_node_fenced "$survivor" "$owner_n"
elsewhere() { local o; o=$(node_exec "$survivor" clusterctl --json vm show pm1 | jq -r '.state + " " + .owner'); [[ $o == online\ * && $o != "online $owner" ]]; }
expect "pm1 starts on a survivor" wait_for 180 "pm1 online on a survivor" elsewhere
vm_watch_stop
expect_eq "pm1 never ran on two nodes at once (watcher every 100 ms)" 0 "$(vm_watch_twice)"
node_start "$owner_n"
pcmk_wait_online 1 1 2 3

# ---- a vmcluster group, fence_method=pacemaker: pacemaker's fencer proves its node dead
node_exec 1 clusterctl cluster set fence_method=pacemaker >/dev/null
vc_n=$(other_node "$(pm_owner pm1)")
guest_vm_disk vc1 "node$vc_n" "$vol/vc1.img" | node_exec 1 clusterctl vm add - --start --wait >/dev/null
expect "vc1 online on node$vc_n" vm_online_on vc1 "node$vc_n"
survivor=$(other_node "node$vc_n")
node_poweroff "$vc_n"
fenced_by_pacemaker() { grep -q "node node$vc_n fenced (pacemaker" "$(node_dir "$survivor")/log/vmclusterd.log"; }
expect "vmcluster has node$vc_n fenced through pacemaker's fencer" wait_for 90 "node$vc_n fenced (pacemaker)" fenced_by_pacemaker
vc_elsewhere() { local o; o=$(node_exec "$survivor" clusterctl --json vm show vc1 | jq -r '.state + " " + .owner'); [[ $o == online\ * && $o != "online node$vc_n" ]]; }
expect "vc1 restarts on a survivor" wait_for 120 "vc1 online elsewhere" vc_elsewhere
node_start "$vc_n"

# ---- pacemaker down on a node: clusterctl says so in one line, and changes nothing
owner=$(pm_owner pm1)
down_n=$(other_node "$owner")
harness_stop_pacemaker "$down_n"
out=$(node_exec "$down_n" clusterctl move-vm pm1 "node$down_n" 2>&1) && rc=0 || rc=$?
expect "move-vm with pacemaker down fails" test "$rc" -ne 0
expect_eq "... in one line" 1 "$(wc -l <<<"$out")"
expect "... that says pacemaker does not answer" grep -q "pacemaker does not answer on this node.*nothing was changed" <<<"$out"
expect "pm1 still runs on $owner" vm_online_on pm1 "$owner"
out=$(node_exec "$down_n" clusterctl vm list 2>&1 >/dev/null)
expect "vm list says in one line that pacemaker's view is unknown" grep -q "where pacemaker runs the VMs it manages is unknown" <<<"$out"

finish
