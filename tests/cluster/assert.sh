# shellcheck shell=bash
# Assertions and cluster-wide checks for tests/cluster/*.sh (sourced after
# harness.sh). Every check prints PASS or FAIL with what it checked; a test
# ends with `finish`, which exits 1 if anything failed.

ASSERT_FAILS=0
ASSERT_PASSES=0

pass() {
	echo "PASS: $*"
	ASSERT_PASSES=$((ASSERT_PASSES + 1))
}

fail() {
	echo "FAIL: $*"
	ASSERT_FAILS=$((ASSERT_FAILS + 1))
}

# expect DESCRIPTION CMD... : passes when CMD succeeds
expect() {
	local desc=$1
	shift
	if "$@"; then pass "$desc"; else fail "$desc"; fi
}

# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq() {
	if [[ "$2" == "$3" ]]; then
		pass "$1"
	else
		fail "$1: expected '$2', got '$3'"
	fi
}

# refused EXIT SUBSTRING CMD...: CMD fails with exit EXIT and says SUBSTRING on stderr
refused() {
	local want=$1 msg=$2 out rc
	shift 2
	set +e
	out=$("$@" 2>&1 >/dev/null)
	rc=$?
	set -e
	if [[ $rc -eq $want && $out == *"$msg"* ]]; then pass "refused ($rc): $out"; else fail "'$*': exit $rc: $out"; fi
}

# refused_on NODE EXIT SUBSTRING CMD...: CMD run in NODE fails with exit EXIT and one line
# on stderr that says SUBSTRING
refused_on() {
	local node=$1 want_rc=$2 want_msg=$3 err rc
	shift 3
	set +e
	err=$(node_exec "$node" "$@" 2>&1 >/dev/null </dev/null)
	rc=$?
	set -e
	if [[ $rc -ne $want_rc ]]; then
		fail "'$*' exited $rc, expected $want_rc ($err)"
	elif [[ $err != *"$want_msg"* ]]; then
		fail "'$*' said '$err', expected it to mention '$want_msg'"
	elif [[ $(wc -l <<<"$err") -ne 1 ]]; then
		fail "'$*' printed more than one line: $err"
	else
		pass "'$*' refused (exit $rc): $err"
	fi
}

# qemu_pids NODE VM: pids of QEMU processes named VM among node NODE's processes
qemu_pids() {
	local pid
	for pid in $(node_pids "$1"); do
		if { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -q -- "-name $2\b"; then echo "$pid"; fi
	done
}

# guest_cluster_up N: cluster_up N, the test guest built into $guest
# ($HARNESS_RUNDIR/guest), and every node quorate with all N up.
guest_cluster_up() {
	cluster_up "$1"
	guest=$HARNESS_RUNDIR/guest
	"$(dirname "${BASH_SOURCE[0]}")/../guest/build-guest" "$guest" >"$HARNESS_RUNDIR/build-guest.log" 2>&1 ||
		{ cat "$HARNESS_RUNDIR/build-guest.log" >&2; fail "the test guest could not be built"; finish; }
	local i
	for ((i = 1; i <= $1; i++)); do wait_for 30 "node $i quorate" node_sees "$i" "$1" true; done
}

finish() {
	echo "$ASSERT_PASSES passed, $ASSERT_FAILS failed"
	[[ $ASSERT_FAILS -eq 0 ]]
	exit $?
}

status_field() { # NODE JQ-FILTER
	node_exec "$1" clusterctl --json status 2>/dev/null | jq -r "$2"
}

# node_sees NODE UP QUORATE: NODE reports UP nodes up and quorate true/false
node_sees() {
	local s
	s=$(node_exec "$1" clusterctl --json status 2>/dev/null) || return 1
	[[ $(jq '[.nodes[] | select(.state == "up")] | length' <<<"$s") == "$2" ]] &&
		[[ $(jq -r .quorate <<<"$s") == "$3" ]] &&
		[[ $(jq -r .sync <<<"$s") == done ]]
}

# nodes_agree NODE...: all answer, all synced, one state digest among them
nodes_agree() {
	local first="" d n
	for n in "$@"; do
		d=$(node_exec "$n" clusterctl --json status 2>/dev/null | jq -r 'select(.sync == "done") | .state_digest') || return 1
		[[ -n $d ]] || return 1
		if [[ -z $first ]]; then first=$d; elif [[ $d != "$first" ]]; then return 1; fi
	done
}

vm_count() { node_exec "$1" clusterctl --json vm list | jq '.vms | length'; }

# vm_def NAME [MEMORY]: a small valid definition on stdout
vm_def() {
	printf '{"name":"%s","memory_mib":%s,"vcpus":1,"boot":{"kernel":"/var/lib/vmcluster/guest/vmlinuz","cmdline":"console=ttyS0"},"preferred_owners":["node1"],"priority":"medium"}\n' \
		"$1" "${2:-64}"
}

# vm_add_on NODE NAME: add a VM through NODE, reading the definition from stdin
vm_add_on() {
	vm_def "$2" | node_exec "$1" clusterctl vm add - >/dev/null
}

# guest_vm NAME PREFERRED [EXTRA]: a definition of the test guest ($guest,
# from guest_cluster_up) on stdout; EXTRA is more JSON fields (',"priority":"high"').
guest_vm() {
	printf '{"name":"%s","memory_mib":128,"boot":{"kernel":"%s/vmlinux","initrd":"%s/initrd.img","cmdline":"%s"},"preferred_owners":["%s"]%s}\n' \
		"$1" "$guest" "$guest" "$(cat "$guest/cmdline")" "$2" "${3:-}"
}

# guest_vm_args NAME PREFERRED KERNEL_ARGS [EXTRA]: guest_vm with more on its
# kernel command line (vmc.dirty_mib_s=64 vmc.buffer_mib=48, say: tests/guest/README.md)
guest_vm_args() {
	printf '{"name":"%s","memory_mib":128,"boot":{"kernel":"%s/vmlinux","initrd":"%s/initrd.img","cmdline":"%s %s"},"preferred_owners":["%s"]%s}\n' \
		"$1" "$guest" "$guest" "$(cat "$guest/cmdline")" "$3" "$2" "${4:-}"
}

# guest_vm_disk NAME PREFERRED IMAGE [EXTRA]: guest_vm with one disk, IMAGE
guest_vm_disk() {
	guest_vm "$1" "$2" ",\"disks\":[{\"path\":\"$3\"}]${4:-}"
}

# vm_online_on VM NODE [ASK]: VM is online on NODE, as node ASK (default 1) sees it
# serial_log NODE VM: the guest's console as NODE's QEMU wrote it
serial_log() { echo "$(node_dir "$1")/lib-vmcluster/vms/$2.serial.log"; }
# counter_of NODE VM: the last "vmc-counter N" the guest printed there (it prints one every 100 ms)
counter_of() { grep -a -o 'vmc-counter [0-9]*' "$(serial_log "$1" "$2")" 2>/dev/null | tail -1 | awk '{print $2}'; }
# counter_above NODE VM N: its last counter there is above N
counter_above() { local c; c=$(counter_of "$1" "$2"); [[ -n $c && $c -gt $3 ]]; }
# first_counter_of NODE VM: the first one there
first_counter_of() { grep -a -o 'vmc-counter [0-9]*' "$(serial_log "$1" "$2")" 2>/dev/null | head -1 | awk '{print $2}'; }
# booted_on NODE VM: how many times the guest booted there ("vmc-guest ready" lines)
booted_on() { cat "$(serial_log "$1" "$2")" 2>/dev/null | grep -a -c 'vmc-guest ready' || true; }

# counters_on_two VM NODE...: the counter values the guest printed on more
# than one of these nodes. Two QEMUs running the VM at once would each go
# on from the same value; a move hands over from N to N+1. Empty when it
# never ran twice (a guest that rebooted prints values again: check boots).
counters_on_two() {
	local vm=$1 n
	shift
	for n in "$@"; do
		grep -a -o 'vmc-counter [0-9]*' "$(serial_log "$n" "$vm")" 2>/dev/null | awk '{print $2}' | sort -un
	done | sort -n | uniq -d | tr '\n' ' '
}

vm_online_on() {
	[[ $(node_exec "${3:-1}" clusterctl --json vm show "$1" | jq -r '.state + " " + .owner') == "online $2" ]]
}
