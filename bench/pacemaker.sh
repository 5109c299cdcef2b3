#!/bin/bash
# Pacemaker benchmark (prints figures; never passes or fails on time).
# One 3-node test cluster running corosync, vmclusterd and pacemakerd
# (HARNESS_PACEMAKER=1), one token, three resources side by side:
#   vb  the test guest as a vmcluster-managed group (fence_method=pacemaker:
#       vmcluster has pacemaker's fencer fence the lost node);
#   pm  the same guest as a pacemaker-managed group, resource
#       ocf:vmcluster:VMGroup (allow-migrate=true);
#   d1  an ocf:pacemaker:Dummy resource (pacemaker's own floor).
# Failover, RUNS times, a different node each time: all three run on the
# victim, the victim is powered off, and from the survivors' logs (ms
# after the power-off):
#   corosync's detection  vmclusterd logging that the node left its group;
#   fenced                pacemaker's fencer reporting the node terminated;
#   (a) vb online         vmclusterd: "vm vb online on nodeX";
#   (b) pm online         vmclusterd: "vm pm online on nodeX" (the agent's start);
#   (c) d1 started        pacemaker: "Result of start operation for d1 on nodeX: ok".
# Moves, RUNS times each, of the same guest between the survivors: a
# crm_resource --move of pm (until pacemaker runs it only on the target
# and vmcluster has it online there), clusterctl move-vm of pm (it goes
# through pacemaker and returns once the move is done and its constraint
# removed), and clusterctl move-vm --wait of vb (vmcluster alone).
# Usage: bench/pacemaker.sh [RUNS]   (root; VMC_BUILDDIR as for tests)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export VMC_BUILDDIR=${VMC_BUILDDIR:-$top/build}
. "$top/tests/cluster/harness.sh"
. "$top/tests/cluster/assert.sh"
harness_require_root_netns
runs=${1:-3}
export VMC_DAEMON_ARGS="--vm-memory=1024 --stop-timeout=2"

HARNESS_PACEMAKER=1 guest_cluster_up 3
node_exec 1 clusterctl cluster set accel=tcg fence_method=pacemaker >/dev/null
echo "corosync token in force: $(node_exec 1 corosync-cmapctl -g runtime.config.totem.token | awk '{print $NF}') ms"
echo "pacemaker: $(node_exec 1 pacemakerd --version | head -1)"

guest_def() { # NAME [EXTRA JSON]
	printf '{"name":"%s","memory_mib":128,"boot":{"kernel":"%s/vmlinux","initrd":"%s/initrd.img","cmdline":"%s"}%s}\n' \
		"$1" "$guest" "$guest" "$(cat "$guest/cmdline")" "${2:-}"
}
guest_def vb ',"priority":"high"' | node_exec 1 clusterctl vm add - --start --wait >/dev/null
guest_def pm ',"manager":"pacemaker"' | node_exec 1 clusterctl vm add - >/dev/null
pcmk_exec 1 cibadmin --create --scope resources --xml-text "$(pcmk_vmgroup_xml pm pm 5s)"
pcmk_exec 1 cibadmin --create --scope resources --xml-text '
<primitive id="d1" class="ocf" provider="pacemaker" type="Dummy">
  <meta_attributes id="d1-meta"><nvpair id="d1-stickiness" name="resource-stickiness" value="100"/></meta_attributes>
  <operations><op id="d1-monitor" name="monitor" interval="5s" timeout="20s"/></operations>
</primitive>'

now_ms() { date +%s%3N; }
ms_of_log_line() { # "Dec 02 18:16:33.824 ..." -> epoch ms
	date -d "$(awk '{print $1, $2, $3}' <<<"$1")" +%s%3N
}
# first_after T0 PATTERN NODE...: ms after T0 of the first line matching
# PATTERN, at or after T0, in the vmclusterd and pacemaker logs of NODEs
first_after() {
	local t0=$1 pattern=$2 i line ms best=""
	shift 2
	for i; do
		while IFS= read -r line; do
			ms=$(ms_of_log_line "$line")
			if ((ms >= t0)); then
				[[ -z $best || $ms -lt $best ]] && best=$ms
				break
			fi
		done < <(grep -a -h -E "$pattern" "$(node_dir "$i")/log/vmclusterd.log" \
			"$(node_dir "$i")/log/pacemaker/pacemaker.log" 2>/dev/null | sort)
	done
	[[ -n $best ]] && echo $((best - t0)) || echo -
}
vm_where() { node_exec "$1" clusterctl --json vm show "$2" 2>/dev/null | jq -r '.state + " " + .owner'; }
# d1_node I: where node I's pacemaker runs d1 (crm_resource --locate: "resource d1 is running on: node2")
d1_node() { pcmk_exec "$1" crm_resource --locate --resource d1 2>/dev/null | awk '/is running on:/ {print $NF; exit}'; }
d1_on() { [[ $(d1_node "${2:-1}") == "$1" ]]; }
# pcmk_put RSC NODE CHECK...: pacemaker moves RSC to NODE (a constraint, then
# cleared: stickiness keeps it there) and CHECK says it is there
pcmk_put() {
	local rsc=$1 node=$2
	shift 2
	"$@" && return 0
	pcmk_exec 1 crm_resource --move --resource "$rsc" --node "$node" >/dev/null 2>&1
	wait_for 180 "$rsc on $node" "$@"
	pcmk_exec 1 crm_resource --clear --resource "$rsc" >/dev/null 2>&1
}
wait_for 90 "pacemaker to start pm" pcmk_vm_started pm

fails=()
for ((run = 1; run <= runs; run++)); do
	victim=$(((run - 1) % 3 + 1))
	survivor=$((victim % 3 + 1))
	other=$(((victim + 1) % 3 + 1))
	[[ $(vm_where 1 vb) == "online node$victim" ]] || node_exec 1 clusterctl move-vm vb "node$victim" --wait >/dev/null
	pcmk_put pm "node$victim" pcmk_vm_on pm "node$victim"
	pcmk_put d1 "node$victim" d1_on "node$victim" 1
	wait_for 60 "pacemaker idle" pcmk_is_idle "$survivor"
	dc=$(pcmk_dc "$survivor")

	t0=$(now_ms)
	node_poweroff "$victim"
	recovered() {
		[[ $(vm_where "$survivor" vb) == online\ node[!$victim] ]] &&
			[[ $(vm_where "$survivor" pm) == online\ node[!$victim] ]] &&
			[[ $(d1_node "$survivor") == node[!$victim] ]]
	}
	if ! wait_for 180 "vb, pm and d1 running again on a survivor" recovered; then
		echo "run $run: node$victim powered off: not everything came back within 180 s"
	else
		left=$(first_after "$t0" "node node$victim left the vmcluster group" "$survivor" "$other")
		fenced=$(first_after "$t0" "Peer node$victim was terminated" "$survivor" "$other")
		# When pacemaker's DC sends the starts out (after its own view of the loss and the fencing).
		sched=$(first_after "$t0" "Initiating start operation d1_start_0" "$survivor" "$other")
		a=$(first_after "$t0" "vm vb online on node" "$survivor" "$other")
		b=$(first_after "$t0" "vm pm online on node" "$survivor" "$other")
		c=$(first_after "$t0" "Result of start operation for d1 on node.*: ok" "$survivor" "$other")
		printf 'run %d: node%d off (%s): detection %5s ms, fenced %5s ms, (a) vb online %5s ms, starts sent %5s ms, (b) pm online %5s ms, (c) d1 started %5s ms\n' \
			"$run" "$victim" "$([[ $dc == "node$victim" ]] && echo "the DC" || echo "DC $dc")" "$left" "$fenced" "$a" "$sched" "$b" "$c"
		fails+=("$left $fenced $a $sched $b $c")
	fi
	wait_for 60 "pacemaker to have node$victim down" pcmk_node_is_down "$survivor" "$victim"
	node_start "$victim"
	wait_for 60 "node $victim back" node_sees "$victim" 3 true
	pcmk_wait_online "$survivor" 1 2 3
done

# Moves between two nodes, back and forth: pm by crm_resource and by
# clusterctl, vb by clusterctl.
moves=()
for ((run = 1; run <= runs; run++)); do
	wait_for 60 "pacemaker idle" pcmk_is_idle 1
	from=$(node_exec 1 clusterctl --json vm show pm | jq -r .owner)
	to=node$((${from#node} % 3 + 1))
	t0=$(now_ms)
	pcmk_exec 1 crm_resource --move --resource pm --node "$to" >/dev/null 2>&1
	wait_for 180 "pm on $to" pcmk_vm_on pm "$to"
	t_crm=$(($(now_ms) - t0))
	pcmk_exec 1 crm_resource --clear --resource pm >/dev/null 2>&1
	wait_for 60 "pacemaker idle" pcmk_is_idle 1

	back=$from
	t0=$(now_ms)
	node_exec 1 clusterctl move-vm pm "$back" >/dev/null
	t_ctl=$(($(now_ms) - t0))
	pcmk_vm_on pm "$back" || echo "run $run: clusterctl move-vm pm $back returned before pm ran there"

	vfrom=$(node_exec 1 clusterctl --json vm show vb | jq -r .owner)
	vto=node$((${vfrom#node} % 3 + 1))
	t0=$(now_ms)
	node_exec 1 clusterctl move-vm vb "$vto" --wait >/dev/null
	t_vb=$(($(now_ms) - t0))
	printf 'move %d: pm %s->%s by crm_resource --move %5d ms; pm %s->%s by clusterctl move-vm %5d ms; vb %s->%s by clusterctl move-vm %5d ms\n' \
		"$run" "$from" "$to" "$t_crm" "$to" "$back" "$t_ctl" "$vfrom" "$vto" "$t_vb"
	moves+=("$t_crm $t_ctl $t_vb")
done

summary() { # LABELS... then the rows on stdin
	awk -v labels="$*" '
		{ for (i = 1; i <= NF; i++) v[i, NR] = $i; nf = NF }
		function median(col, n,   i, j, t, y, k) { k = 0
			for (i = 1; i <= n; i++) if (v[col, i] != "-") y[++k] = v[col, i]
			for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (y[j] < y[i]) { t = y[i]; y[i] = y[j]; y[j] = t }
			if (k == 0) return "-"
			return k % 2 ? y[(k + 1) / 2] : (y[k / 2] + y[k / 2 + 1]) / 2 }
		function max(col, n,   i, m) { m = "-"
			for (i = 1; i <= n; i++) if (v[col, i] != "-" && (m == "-" || v[col, i] + 0 > m + 0)) m = v[col, i]
			return m }
		END { if (NR == 0) { print "  no complete run"; exit }
			split(labels, l, ",")
			for (i = 1; i <= nf; i++) printf "  %-46s median %6s ms, max %6s ms (%d runs)\n", l[i], median(i, NR), max(i, NR), NR }'
}
echo "failover, power-off to:"
printf '%s\n' "${fails[@]}" | summary "corosync's detection,pacemaker's fencing done,(a) vmcluster group online,pacemaker's DC sends the starts,(b) VMGroup resource online,(c) Dummy resource started"
echo "live migration of the guest:"
printf '%s\n' "${moves[@]}" | summary "crm_resource --move (VMGroup),clusterctl move-vm (VMGroup via pacemaker),clusterctl move-vm --wait (vmcluster group)"
