#!/bin/bash
# VMs for real: 6 VMs of the test guest (QEMU under TCG) started on 3 nodes
# where placement puts them, each QEMU only on its owner; vmclusterd killed
# and restarted under running VMs re-attaches (same QEMU pid, counter never
# reset); a VM whose QEMU is killed restarts on its node, then fails over,
# then is left failed; bad starts are refused with a clear error.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns
command -v qemu-system-x86_64 >/dev/null || harness_skip "qemu-system-x86_64 is not installed"

export VMC_DAEMON_ARGS="--vm-memory=1024 --stop-timeout=2"
cluster_up 3
guest=$HARNESS_RUNDIR/guest
"$here/../guest/build-guest" "$guest" >"$HARNESS_RUNDIR/build-guest.log" 2>&1 ||
	{ cat "$HARNESS_RUNDIR/build-guest.log" >&2; fail "the test guest could not be built"; finish; }
for i in 1 2 3; do wait_for 30 "node $i quorate" node_sees "$i" 3 true; done
node_exec 1 clusterctl cluster set accel=tcg fence_method=none >/dev/null

vm_json() { # NAME PREFERRED [MEMORY] [MAX_FAILURES]
	printf '{"name":"%s","memory_mib":%s,"boot":{"kernel":"%s/vmlinux","initrd":"%s/initrd.img","cmdline":"%s"},"preferred_owners":["%s"],"failover":{"max_failures":%s,"period_s":3600}}\n' \
		"$1" "${3:-128}" "$guest" "$guest" "$(cat "$guest/cmdline")" "$2" "${4:-3}"
}

vm_field() { node_exec 1 clusterctl --json vm show "$1" | jq -r ".$2"; }
vm_is() { [[ $(vm_field "$1" state) == "$2" ]]; }

for k in 1 2 3 4 5 6; do
	owner=node$(((k + 1) / 2))
	vm_json "vm$k" "$owner" | node_exec $(((k % 3) + 1)) clusterctl vm add - --start >/dev/null
done
for k in 1 2 3 4 5 6; do
	expect "vm$k comes online" wait_for 120 "vm$k online" vm_is "vm$k" online
done
node_exec 2 clusterctl vm list
for k in 1 2 3 4 5 6; do
	owner=node$(((k + 1) / 2))
	expect_eq "vm$k runs on its preferred owner" "$owner" "$(vm_field "vm$k" owner)"
	for i in 1 2 3; do
		n=$(qemu_pids "$i" "vm$k" | wc -l)
		if [[ node$i == "$owner" ]]; then
			expect_eq "vm$k has one QEMU on node$i" 1 "$n"
		else
			expect_eq "vm$k has no QEMU on node$i" 0 "$n"
		fi
	done
done


pid_before=$(qemu_pids 1 vm1)
expect "vm1's counter runs" wait_for 30 "vm1 counter" counter_above 1 vm1 5
node_kill_daemon 1
count_while_down=$(counter_of 1 vm1)
node_start_daemon 1
expect "node 1 rejoins after its daemon restart" wait_for 60 "node 1 synced" node_sees 1 3 true
expect_eq "vm1 kept its QEMU across the daemon restart" "$pid_before" "$(qemu_pids 1 vm1)"
expect "vm1's counter kept counting" wait_for 30 "vm1 counter" counter_above 1 vm1 "$count_while_down"
counter_never_reset() {
	grep -a -o 'vmc-counter [0-9]*' "$(serial_log "$1" "$2")" | awk '$2 < prev { bad = 1 } { prev = $2 } END { exit bad }'
}
expect "vm1's counter never went back (no restart, no second copy)" counter_never_reset 1 vm1
expect "vm1 is still online" vm_is vm1 online
expect "node 1's log says it re-attached" grep -q "re-attached to 2 VMs" "$(node_dir 1)/log/vmclusterd.log"

# Every daemon restarted at once (an upgrade): corosync stays quorate, so a
# daemon that comes back alone must leave its VMs running while it waits.
pids_before=$(for i in 1 2 3; do for k in 1 2 3 4 5 6; do qemu_pids "$i" "vm$k"; done; done | sort | tr '\n' ' ')
for i in 1 2 3; do node_kill_daemon "$i"; done
node_start_daemon 1
daemon_synced_alone() { [[ $(status_field 1 .sync) == done ]]; }
expect "node 1's daemon syncs alone" wait_for 30 "node 1 synced alone" daemon_synced_alone
expect_eq "alone and without a quorum of daemons, node 1 still runs vm1" "$pid_before" "$(qemu_pids 1 vm1)"
node_start_daemon 2
node_start_daemon 3
for i in 1 2 3; do wait_for 60 "node $i synced" node_sees "$i" 3 true; done
pids_after=$(for i in 1 2 3; do for k in 1 2 3 4 5 6; do qemu_pids "$i" "vm$k"; done; done | sort | tr '\n' ' ')
expect_eq "every VM kept its QEMU across a restart of every daemon" "$pids_before" "$pids_after"

# Crash policy: vm3 (node2, max_failures 3): restart here, then fail over, then ...
node_exec 1 clusterctl vm set vm3 failover.max_failures=2 >/dev/null
pid=$(qemu_pids 2 vm3)
kill -KILL "$pid"
restarted_here() { local p; p=$(qemu_pids 2 vm3); [[ -n $p && $p != "$pid" ]] && vm_is vm3 online; }
expect "vm3 killed once: restarted on node2" wait_for 60 "vm3 restarted on node2" restarted_here
pid=$(qemu_pids 2 vm3)
kill -KILL "$pid"
failed_over() { [[ $(vm_field vm3 owner) != node2 ]] && vm_is vm3 online; }
expect "vm3 killed again on node2: failed over" wait_for 60 "vm3 failed over" failed_over
new_owner=$(vm_field vm3 owner)
expect_eq "vm3 no longer has a QEMU on node2" 0 "$(qemu_pids 2 vm3 | wc -l)"
kill -KILL "$(qemu_pids "${new_owner#node}" vm3)"
expect "vm3 past its threshold: failed" wait_for 60 "vm3 failed" vm_is vm3 failed
expect "the reason names max_failures" grep -q "max_failures" <<<"$(vm_field vm3 reason)"
expect_eq "a failed vm has no QEMU anywhere" 0 "$(for i in 1 2 3; do qemu_pids "$i" vm3; done | wc -l)"

# Bad input: a clear error, nothing else changed.
version=$(status_field 1 .config_version)
refused 1 "no vm named 'ghost'" node_exec 1 clusterctl vm start ghost
vm_json big node1 4096 | node_exec 1 clusterctl vm add - >/dev/null
refused 1 "not enough free memory" node_exec 2 clusterctl vm start big
sed 's|/vmlinux|/missing-vmlinux|' <<<"$(vm_json nokernel node1)" | node_exec 1 clusterctl vm add - >/dev/null
refused 2 "missing-vmlinux" node_exec 3 clusterctl vm start nokernel
expect_eq "refused starts changed nothing but the two adds" $((version + 2)) "$(status_field 1 .config_version)"

expect "vm stop --wait brings vm2 offline" node_exec 1 clusterctl vm stop vm2 --wait
expect_eq "vm2's QEMU is gone" 0 "$(qemu_pids 1 vm2 | wc -l)"

finish
