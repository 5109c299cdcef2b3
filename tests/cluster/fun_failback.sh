#!/bin/bash
# Failback on node recovery and node quarantine, on real corosync and QEMU
# (test guests, TCG, the harness's fence agent).
#  1. node3 runs fi (failback immediate), fn (never) and fw (a window).
#     Powered off, it is fenced and the three restart elsewhere, each with
#     node3 as its home. Back, node3 gets fi back live, but only once it
#     has been back failback_delay_s; fn stays; fw stays until its window
#     opens (set to open a minute or so later), then comes back live.
#  2. fi moved by hand to node2: no home, no failback; node3 lost and back
#     again leaves it on node2, and vm show says why.
#  3. node3 lost a third time within the hour: quarantined, it takes no VM
#     (no failback, no placement) until an operator resumes it.
# Start order: web starts after db; the recovery of node3's VMs starts db
# first, and web only once db is online. A cycle is refused at vm add.
# A watcher samples every node's QEMUs every 100 ms: no VM on two nodes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns
command -v qemu-system-x86_64 >/dev/null || harness_skip "qemu-system-x86_64 is not installed"

export VMC_DAEMON_ARGS="--vm-memory=1024 --stop-timeout=2"
guest_cluster_up 3
delay=10
node_exec 1 clusterctl cluster set accel=tcg fence_method=agent fence_agent="$HARNESS_RUNDIR/fence_agent" \
	failback_delay_s=$delay >/dev/null

guest_vm fi node3 ',"failback":"immediate"' | node_exec 1 clusterctl vm add - --start --wait >/dev/null
guest_vm fn node3 ',"failback":"never"' | node_exec 1 clusterctl vm add - --start --wait >/dev/null
# A window that is shut now: six hours from now, for ten minutes.
hhmm() { date -u -d "@$1" +%H:%M; }
now=$(date +%s)
guest_vm fw node3 ",\"failback\":\"window $(hhmm $((now + 6 * 3600)))-$(hhmm $((now + 6 * 3600 + 600)))\"" |
	node_exec 1 clusterctl vm add - --start --wait >/dev/null
guest_vm db node3 | node_exec 1 clusterctl vm add - --start --wait >/dev/null
guest_vm web node3 ',"start_after":["db"]' | node_exec 1 clusterctl vm add - --start --wait >/dev/null
guest_vm cyc1 node1 ',"start_after":["cyc2"]' | node_exec 1 clusterctl vm add - >/dev/null
guest_vm cyc2 node1 ',"start_after":["cyc1"]' >"$HARNESS_RUNDIR/cyc2.json"
refused_on 1 2 "a cycle: cyc2 after cyc1 after cyc2" clusterctl vm add "$HARNESS_RUNDIR/cyc2.json"
refused_on 2 2 "a cycle: db after web after db" clusterctl vm set db start_after=web
vms=(fi fn fw db web)
for vm in "${vms[@]}"; do
	expect "$vm online on node3" vm_online_on "$vm" node3
	wait_for 30 "$vm counting" counter_above 3 "$vm" 5
done
vm_watch_start -r

plan() { node_exec "${2:-1}" clusterctl --json vm show "$1" | jq -r '.failback.plan + ": " + .failback.text'; }
online_elsewhere() { local s; s=$(node_exec 1 clusterctl --json vm show "$1" | jq -r '.state + " " + .owner'); [[ $s == online\ * && $s != "online node3" ]]; }
mode_of() { node_exec 1 clusterctl --json node list | jq -r ".[] | select(.name == \"$1\") | .mode"; }
# lose_node3: powered off, fenced, its VMs restarted elsewhere; then started again and synced
lose_node3() {
	local vm
	node_poweroff 3
	for vm in "$@"; do
		expect "$vm restarts elsewhere after node3's loss" wait_for 120 "$vm online elsewhere" online_elsewhere "$vm"
	done
	node_start 3
	expect "node3 rejoins" wait_for 60 "node 3 synced" node_sees 3 3 true
}

# 1. Failover away from node3, then back.
logs_before=()
for n in 1 2; do logs_before+=("$(wc -l <"$(node_dir "$n")/log/vmclusterd.log")"); done
lose_node3 "${vms[@]}"
back_at=$(date +%s)
# On web's new owner, in its own log's order: db online there or elsewhere before web's QEMU started.
wn=$(node_exec 1 clusterctl --json vm show web | jq -r '.owner | ltrimstr("node")')
wlog=$(tail -n +"$((${logs_before[$((wn - 1))]} + 1))" "$(node_dir "$wn")/log/vmclusterd.log")
db_at=$(grep -n "vm db online on" <<<"$wlog" | head -1 | cut -d: -f1)
web_at=$(grep -n "vm web: starting on" <<<"$wlog" | head -1 | cut -d: -f1)
[[ -n $db_at && -n $web_at && $db_at -lt $web_at ]] && pass "the recovery started web only once db was online (log lines $db_at, $web_at)" ||
	fail "start order: db online at line '${db_at}', web started at line '${web_at}' on node$wn"
grep -q "vm web: it starts after db, which is starting: waiting for it" <<<"$wlog" &&
	pass "web's owner said it waits for db" || fail "web's owner did not say it waited for db"
for vm in fi fn fw; do
	expect_eq "$vm's home is node3 (failover)" "node3 failover" \
		"$(node_exec 2 clusterctl --json vm show "$vm" | jq -r '.failback.home + " " + .failback.kind')"
done
p=$(plan fi)
[[ $p == "wait: back to node3 in "*"failback_delay_s $delay"* || $p == "due: "* || $p == "wait: back to node3 once it is online"* ]] &&
	pass "fi right after node3's return: $p" || fail "fi's plan right after node3's return: $p"
from=$(node_exec 1 clusterctl --json vm show fi | jq -r '.owner | ltrimstr("node")')
expect "fi fails back to node3" wait_for 90 "fi online on node3" vm_online_on fi node3
home_at=$(date +%s)
c=$(counter_of "$from" fi || true) # the last value it printed on the node it left
[[ $((home_at - back_at)) -ge $((delay - 2)) ]] && pass "fi came home $((home_at - back_at)) s after node3 was back (delay $delay s)" ||
	fail "fi came home $((home_at - back_at)) s after node3 was back, before failback_delay_s $delay"
reason=$(node_exec 1 clusterctl --json vm show fi | jq -r .reason)
[[ $reason == "moved live from node$from to node3" ]] && pass "live: $reason" || fail "fi's failback: $reason"
expect "fi's counter goes on on node3 (from ${c:-nothing} on node$from)" wait_for 20 "fi counter on node3" counter_above 3 fi "${c:-0}"
expect_eq "fi has no home left" "none" "$(plan fi | cut -d: -f1)"
p=$(plan fn 3)
[[ $p == "stays: "*"failback policy is never"* ]] && pass "fn stays: $p" || fail "fn's plan: $p"
p=$(plan fw 2)
[[ $p == "wait: "*"when its failback window"*"opens (UTC), in "* ]] && pass "fw waits: $p" || fail "fw's plan: $p"
online_elsewhere fn && online_elsewhere fw && pass "fn and fw stay away" || fail "fn or fw went back to node3"

# fw's window: from the next minute at least 20 s away, for ten minutes.
now=$(date +%s)
opens=$(((now + 20 + 59) / 60 * 60))
node_exec 1 clusterctl vm set fw "failback=window $(hhmm $opens)-$(hhmm $((opens + 600)))" >/dev/null
p=$(plan fw)
[[ $p =~ ^wait:.*opens\ \(UTC\),\ in\ ([0-9]+)\ s$ && ${BASH_REMATCH[1]} -le $((opens - now + 2)) ]] &&
	pass "fw waits for its window: $p" ||
	fail "fw's plan with its window a minute away: $p"
expect "fw fails back to node3 once its window opens" wait_for 150 "fw online on node3" vm_online_on fw node3
arrived=$(date +%s)
[[ $arrived -ge $opens ]] && pass "fw came home $((arrived - opens)) s after its window opened" ||
	fail "fw came home $((opens - arrived)) s before its window opened"

# 2. A manual move leaves no constraint: node3's next loss and return leave fi where it was put.
out=$(node_exec 1 clusterctl --timeout 120 move-vm fi node2 --wait 2>&1) && pass "move-vm fi node2: $(tail -1 <<<"$out")" ||
	fail "move-vm fi node2: $out"
p=$(plan fi)
[[ $p == "none: "*"a manual move leaves no failback"* ]] && pass "after the manual move: $p" || fail "fi's plan after move-vm: $p"
lose_node3 fw
sleep_until=$(($(date +%s) + delay + 8))
stays_on_node2() { vm_online_on fi node2 && (($(date +%s) >= sleep_until)); }
expect "fi stays on node2 past failback_delay_s after node3's return" wait_for $((delay + 30)) "fi on node2 past the delay" stays_on_node2
expect_eq "fi still has no failback" "none" "$(plan fi 3 | cut -d: -f1)"
asked=$(cat "$(node_dir 1)/log/vmclusterd.log" "$(node_dir 2)/log/vmclusterd.log" | grep -c "vm fi moving live to node3 (failback)" || true)
expect_eq "the only failback of fi was the one before the manual move (the coordinators' logs)" 2 "$asked"
expect "fw is back on node3 (its window is open)" wait_for 90 "fw online on node3" vm_online_on fw node3

# 3. The third loss within the hour quarantines node3.
lose_node3 fw
expect_eq "node3 is quarantined" quarantined "$(mode_of node3)"
node_exec 1 clusterctl node list | grep -q '^node3 .*quarantined until .*lost 3 times within an hour' &&
	pass "node list: $(node_exec 1 clusterctl node list | grep '^node3')" || fail "node list: $(node_exec 1 clusterctl node list)"
quiet_until=$(($(date +%s) + delay + 8))
fw_stays_away() { online_elsewhere fw && (($(date +%s) >= quiet_until)); }
expect "fw does not fail back to a quarantined node3" wait_for $((delay + 30)) "fw away past the delay" fw_stays_away
p=$(plan fw)
[[ $p == "wait: "*"quarantined"* ]] && pass "fw waits: $p" || fail "fw's plan while node3 is quarantined: $p"
guest_vm fq node3 | node_exec 1 clusterctl vm add - --start --wait >/dev/null
owner=$(node_exec 1 clusterctl --json vm show fq | jq -r .owner)
[[ $owner != node3 ]] && pass "a VM preferring node3 starts on $owner" || fail "a VM was placed on quarantined node3"
refused_on 2 1 "node node3 is quarantined" clusterctl move-vm fq node3
node_exec 2 clusterctl node resume node3 >/dev/null
expect_eq "resumed, node3 is active" active "$(mode_of node3)"
expect "fw fails back once node3 is resumed" wait_for 90 "fw online on node3" vm_online_on fw node3

vm_watch_stop
expect_eq "no VM ran on two nodes at once (watcher)" 0 "$(vm_watch_twice)"
expect "every node agrees" wait_for 20 "nodes agree" nodes_agree 1 2 3
finish
