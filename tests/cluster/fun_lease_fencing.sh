#!/bin/bash
# Fence method lease, with no fence device: every node holds a watchdog
# (the harness's emulator, which powers a node off from outside when it is
# not petted) and renews its lease on a shared volume; the survivors
# restart a lost node's VMs only once its lease stayed unrenewed for the
# lease timeout on their own clock. A watcher samples every node's QEMUs
# every 100 ms throughout: no VM may ever run on two nodes.
#   a node cut off kills its VMs before its lease can expire; the others
#     restart them after it expired (the timeline is printed);
#   a node powered off: its VM restarts after the lease timeout, not before;
#   a node frozen whole (SIGSTOP of everything, QEMU included) for 3x the
#     lease timeout: its watchdog powers it off, its VM restarts after the
#     lease expired, and nothing of it runs after the SIGCONT;
#   vmclusterd alone frozen: the same;
#   vmclusterd killed and restarted within the watchdog timeout: its VM
#     keeps running, the same QEMU;
#   the image locks are the same after every daemon and corosync restarted.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns
command -v qemu-system-x86_64 >/dev/null || harness_skip "qemu-system-x86_64 is not installed"

# lease_io_timeout_s=1: the watchdog fires 6 s after the last pet, a lease expires after 14 s.
LEASE_MS=14000
export HARNESS_WATCHDOG_MS=6000
export VMC_DAEMON_ARGS="--vm-memory=1024 --stop-timeout=2"
guest_cluster_up 3
node_exec 1 clusterctl cluster set accel=tcg lease_io_timeout_s=1 >/dev/null
vol=$HARNESS_RUNDIR/csv1
mkdir -p "$vol"
truncate -s 1M "$vol/web1.img" "$vol/web2.img" "$vol/web3.img"
node_exec 1 clusterctl volume add csv1 "$vol" >/dev/null

ms_now() { date +%s%3N; }
healthy_everywhere() {
	[[ $(node_exec 1 clusterctl --json volume show csv1 | jq '[.seen[] | select(.health == "ok")] | length') == 3 ]]
}
lease_fencing() { [[ $(node_exec 1 clusterctl --json status | jq -r .fencing_by) == lease* ]]; }
expect "every node renews its lease on csv1" wait_for 30 "csv1 ok on every node" healthy_everywhere
expect "with a watchdog on every node, status says lease fencing is used" wait_for 30 "lease fencing" lease_fencing
node_exec 1 clusterctl status 2>&1 | grep -q "^Fencing: lease" || fail "status's text does not say lease"
vm_watch_start

owner_of() { node_exec "${2:-1}" clusterctl --json vm show "$1" | jq -r 'select(.state == "online") | .owner'; }
online_elsewhere() { local o; o=$(owner_of "$1" "${3:-1}"); [[ -n $o && $o != "$2" ]]; }
no_qemu() { [[ -z $(qemu_pids "$1" "$2") ]]; }
add_vm() { # NAME PREFERRED
	guest_vm_disk "$1" "$2" "$vol/$1.img" | node_exec 1 clusterctl vm add - --start --wait >/dev/null
	expect "$1 online on $2" vm_online_on "$1" "$2"
}
# log_ms NODE PATTERN: the time (ms) of the first line of NODE's daemon log with PATTERN, or nothing
log_ms() {
	local line
	line=$(grep -m1 -- "$2" "$(node_dir "$1")/log/vmclusterd.log" 2>/dev/null) || return 0
	date -d "$(cut -c1-19 <<<"$line")" +%s%3N
}
earliest() { printf '%s\n' "$@" | grep -v '^$' | sort -n | head -1; }
watchdog_fired() { grep -q "expired" "$(node_dir "$1")/log/watchdog.log"; }

# ---- a: node 3 cut off
add_vm web1 node3
t_cut=$(ms_now)
node_partition 3
expect "node 3 kills web1 itself" wait_for 30 "web1 gone from node 3" no_qemu 3 web1
t_killed=$(ms_now)
expect "web1 restarts on a survivor" wait_for 90 "web1 online on node 1 or 2" online_elsewhere web1 node3
t_online=$(ms_now)
t_expired=$(earliest "$(log_ms 1 'node node3 fenced by its leases')" "$(log_ms 2 'node node3 fenced by its leases')")
last=$(node_exec 1 clusterctl --json volume show csv1 | jq -r '.from_here.slots[] | select(.node == "node3") | .changed_ms_ago')
t_last=$(($(ms_now) - last))
echo "timeline (ms after the cut): node 3's last renewal seen $((t_last - t_cut)), web1 killed on node 3 by" \
	"$((t_killed - t_cut)), lease expired on a survivor's clock $((${t_expired:-0} - t_cut)), web1 online again" \
	"$((t_online - t_cut)) (lease timeout $LEASE_MS)"
[[ -n $t_expired ]] && pass "a survivor proved node 3 dead by its lease" || fail "no survivor logged node 3's lease expiry"
((t_killed < t_last + LEASE_MS)) && pass "node 3 killed web1 before its lease could expire" ||
	fail "node 3 killed web1 only $((t_killed - t_last)) ms after its last renewal"
((${t_expired:-0} - t_last >= LEASE_MS - 200)) && pass "the lease expired no sooner than the lease timeout after its last renewal" ||
	fail "the lease expired $((${t_expired:-0} - t_last)) ms after node 3's last renewal"
((t_online >= ${t_expired:-0})) && pass "web1 restarted only after the lease expired" || fail "web1 restarted before the expiry"
node_heal 3
expect "node 3 rejoins" wait_for 60 "node 3 synced" node_sees 3 3 true

# ---- b: node 2 powered off
add_vm web2 node2
t0=$(ms_now)
node_poweroff 2
expect "web2 restarts on a survivor" wait_for 90 "web2 online elsewhere" online_elsewhere web2 node2
elapsed=$(($(ms_now) - t0))
echo "power-off of node 2 to web2 online elsewhere: $elapsed ms (lease timeout $LEASE_MS)"
((elapsed >= LEASE_MS)) && pass "web2 restarted after the lease timeout, not before" ||
	fail "web2 restarted $elapsed ms after the power-off, before the lease timeout"
node_start 2
expect "node 2 rejoins" wait_for 60 "node 2 synced" node_sees 2 3 true

# ---- c: node 3 frozen whole for 3x the lease timeout
add_vm web3 node3
t0=$(ms_now)
frozen=$(node_pids 3)
# shellcheck disable=SC2086 # one pid per word
kill -STOP $frozen
expect "node 3's watchdog fires and powers it off" wait_for 30 "node 3's watchdog" watchdog_fired 3
echo "node 3 frozen to its watchdog firing: $(($(ms_now) - t0)) ms (watchdog $HARNESS_WATCHDOG_MS)"
expect "web3 restarts on a survivor" wait_for 90 "web3 online elsewhere" online_elsewhere web3 node3
elapsed=$(($(ms_now) - t0))
((elapsed >= LEASE_MS)) && pass "web3 restarted after node 3's lease expired ($elapsed ms)" ||
	fail "web3 restarted $elapsed ms after the freeze"
until (($(ms_now) - t0 >= 3 * LEASE_MS)); do sleep 0.5; done # the freeze lasts 3x the lease timeout
# shellcheck disable=SC2086
kill -CONT $frozen 2>/dev/null || true
expect_eq "nothing of node 3 runs after the SIGCONT" "" "$(node_pids 3)"
node_start 3
expect "node 3 rejoins" wait_for 60 "node 3 synced" node_sees 3 3 true

# ---- d: vmclusterd alone frozen where web1 runs
x=$(owner_of web1)
x=${x#node}
: >"$(node_dir "$x")/log/watchdog.log"
t0=$(ms_now)
kill -STOP "$(node_pid_of "$x" vmclusterd)"
expect "node $x's watchdog fires" wait_for 30 "node $x's watchdog" watchdog_fired "$x"
expect "web1 restarts elsewhere" wait_for 120 "web1 online off node $x" online_elsewhere web1 "node$x" \
	"$(((x % 3) + 1))"
elapsed=$(($(ms_now) - t0))
((elapsed >= LEASE_MS)) && pass "web1 restarted after node $x's lease expired ($elapsed ms)" ||
	fail "web1 restarted $elapsed ms after its daemon froze"
expect_eq "nothing of node $x runs" "" "$(node_pids "$x")"
node_start "$x"
expect "node $x rejoins" wait_for 60 "node $x synced" node_sees "$x" 3 true

# ---- e: vmclusterd killed and restarted within the watchdog timeout
y=$(owner_of web2)
y=${y#node}
: >"$(node_dir "$y")/log/watchdog.log"
pid_before=$(qemu_pids "$y" web2)
node_kill_daemon "$y"
node_start_daemon "$y"
expect "node $y rejoins after its daemon restart" wait_for 60 "node $y synced" node_sees "$y" 3 true
expect_eq "web2 kept its QEMU across the daemon restart" "$pid_before" "$(qemu_pids "$y" web2)"
grep -q expired "$(node_dir "$y")/log/watchdog.log" && fail "node $y's watchdog fired during the restart" ||
	pass "node $y's watchdog did not fire"

# ---- f: the locks after every daemon and corosync restarted
locks() { node_exec "$1" clusterctl --json volume show csv1 | jq -c '[.image_locks[] | [.image, .vm, .node]]'; }
before=$(locks 1)
for i in 1 2 3; do
	node_stop "$i"
	node_start "$i"
	wait_for 60 "node $i synced" node_sees "$i" 3 true
done
expect "all nodes agree" wait_for 60 "digests to agree" nodes_agree 1 2 3
expect_eq "the image locks are the same after every daemon and corosync restarted" "$before" "$(locks 2)"
expect_eq "three locks, one per running VM" 3 "$(jq length <<<"$before")"

vm_watch_stop
expect_eq "no VM ran on two nodes in any sample" "" "$(grep -v '^samples' "$HARNESS_RUNDIR/vm-watch" || true)"
echo "VM watcher: $(tail -1 "$HARNESS_RUNDIR/vm-watch") every 100 ms"
finish
