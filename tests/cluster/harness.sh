# shellcheck shell=bash
#
# harness.sh: a real corosync cluster on one machine, for tests/cluster/.
# Source it from a test script (it is set -euo pipefail friendly).
#
# Layout, with P = the test shell's pid and i = node number 1..N:
#
#   root netns    Only gets a blackhole route for $VMC_TEST_NET.0/24 while the
#                 cluster is up, so a packet for the test range can never
#                 leave the machine.
#   vmcP-sw       Switch netns: bridge br0, one port "ni" per node.
#   vmcP-ni       Node netns: lo and eth0 ($VMC_TEST_NET.(10+i)/24, the peer
#                 of switch port ni). No other route. A partition = switch
#                 port ni down; the node keeps its address (corosync rebinds
#                 to localhost when its address disappears).
#   mount ns      One per node, kept alive by a bind mount on $RUNDIR/ns/ni.mnt
#                 so it survives its processes (node_poweroff, node_start).
#                 Node-private dirs are bound over /run, /var/lib/corosync,
#                 /var/lib/vmcluster, /var/log, /etc/vmcluster (and
#                 /var/lib/pacemaker if present), because corosync and
#                 pacemaker keep pid files and state at fixed paths; a fresh
#                 tmpfs sits on /dev/shm because libqb's IPC rings live there
#                 and a killed node would leak them on the host otherwise.
#                 With pacemaker, an overlay on /usr/sbin adds the power
#                 switch as a fence agent, and one on /usr/lib/ocf/resource.d
#                 adds ocf:vmcluster:VMGroup, in the node only.
#
#   $RUNDIR = /tmp/vmc-test.XXXXXX
#     authkey             corosync key shared by the whole test cluster
#     ns/                 private bind mount holding the ni.mnt files
#     ni/                 node i; `node_dir i` prints this path
#       corosync.conf
#       run/ lib-corosync/ lib-vmcluster/ log/ etc-vmcluster/ [lib-pacemaker/]
#       corosync.pid vmclusterd.pid [pacemakerd.pid]   pids recorded when started
#       log/corosync.log log/corosync.out log/vmclusterd.log
#       [log/pacemaker.out log/pacemaker/pacemaker.log]
#     fence_agent         the power switch; fence_agent.log: what it did
#     ni.nsids            node i's namespace inodes, for the switch
#     [pcmk-sbin/]        fence_vmctest (a hard link to fence_agent): the top
#                         layer of the read-only overlay on the nodes' /usr/sbin
#     [pcmk-ocf/]         vmcluster/VMGroup (this build's clusterctl in it): the
#                         top layer of the overlay on /usr/lib/ocf/resource.d
#
# Processes are found by their namespaces (/proc/PID/ns/{net,mnt}), never by
# name, so parallel runs and the machine's own daemons are never touched.
# Daemons are started detached (own session, reparented to init), so a
# test's own `wait` never blocks on them.
#
# Typical test:
#     . "$(dirname "$0")/harness.sh"
#     harness_require_root_netns          # exit 77 (skip) when impossible
#     cluster_up 3                        # also traps EXIT/INT/TERM
#     node_exec 1 clusterctl status
#     node_poweroff 2
#     wait_for 20 "node 1 at 2 members" node_sees_members 1 2
# cluster_up sets traps on EXIT, INT and TERM that call cluster_down (which
# shows the nodes' logs when the exit status is not 0). A test that needs
# its own EXIT trap must call `cluster_down $?` from it.
#
# Public functions: harness_require_root_netns, cluster_up, cluster_down,
# node_exec, node_start, node_stop, node_poweroff, node_partition, node_heal,
# node_pid_of, node_dir, node_pids, node_member_count, node_is_quorate,
# node_is_inquorate, node_sees_members, wait_for.
# With HARNESS_PACEMAKER=1 (below): pcmk_exec, pcmk_dc, pcmk_sees_online,
# pcmk_wait_online, pcmk_is_idle, pcmk_node_is_down, pcmk_fence_count,
# pcmk_node_fenced, pcmk_device_registered.
#
# Pacemaker: `HARNESS_PACEMAKER=1 cluster_up N` also starts pacemakerd on
# every node once corosync is quorate and vmclusterd answers, waits for a
# DC with every node online, then configures the cluster from node 1:
# stonith-enabled=true, stonith-timeout=30s, no-quorum-policy=stop, and one
# stonith device, vmctest-fence (agent fence_vmctest: the harness's power
# switch, $RUNDIR/fence_agent, which each node sees in its /usr/sbin through
# an overlay in its own mount namespace), that can fence every node; it
# returns once every node's fencer has the device. node_start starts
# pacemakerd again (and waits until the node is online in it), node_stop
# stops it first. A node that loses quorum or its power is fenced by the
# others through the switch (a kill of all its processes), as for real.

: "${VMC_BUILDDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${VMC_TEST_NET:=198.51.100}"

HARNESS_PREFIX="vmc$$"
HARNESS_RUNDIR=""
HARNESS_NODES=0
HARNESS_BLACKHOLE_ADDED=0
HARNESS_ENDED_PIDS=()
HARNESS_OUTSIDE_PIDS=()
# Extra options for corosync.conf's quorum section, ";" between them
# ("two_node: 1;wait_for_all: 1"), set before cluster_up.
HARNESS_QUORUM_OPTIONS=${HARNESS_QUORUM_OPTIONS:-}
# The nodes corosync.conf lists (default: all); see nodelist_set.
HARNESS_NODELIST=()
# HARNESS_WATCHDOG_MS: give every node a watchdog (vmc-watchdog, run
# outside the node) that powers it off when not petted for this long; its
# daemons then use /run/vmc-watchdog. Empty: no watchdog, and the daemons
# are pointed at a device that does not exist, never at the host's own.
HARNESS_WATCHDOG_MS=${HARNESS_WATCHDOG_MS:-}
# HARNESS_PACEMAKER=1 before cluster_up: pacemaker runs on every node too,
# started after corosync and vmclusterd, fencing through the harness's power
# switch (see "pacemaker" below). cluster_up copies it to HARNESS_PCMK, as
# `HARNESS_PACEMAKER=1 cluster_up 3` sets it only while cluster_up runs.
HARNESS_PACEMAKER=${HARNESS_PACEMAKER:-0}
HARNESS_PCMK=0
# The power switch's name in the nodes' /usr/sbin, and its stonith resource.
HARNESS_PCMK_AGENT=fence_vmctest
HARNESS_PCMK_DEVICE=vmctest-fence

# Deadlines, in seconds.
HARNESS_QUORUM_TIMEOUT=60
HARNESS_START_TIMEOUT=30
HARNESS_STOP_TIMEOUT=30
HARNESS_KILL_TIMEOUT=10
# Pacemaker: a DC and every node online, the fence device registered; and a
# stop, which first moves the node's resources away.
HARNESS_PCMK_TIMEOUT=90
HARNESS_PCMK_STOP_TIMEOUT=60

# Mount point in the node -> its private directory under node_dir.
HARNESS_PRIVATE_DIRS=(
	/run:run
	/var/lib/corosync:lib-corosync
	/var/lib/vmcluster:lib-vmcluster
	/var/log:log
	/etc/vmcluster:etc-vmcluster
	/var/lib/pacemaker:lib-pacemaker
)
# Created on the host when missing, as the binds need a mount point, and
# left there: removing one would detach the binds of a parallel run.
HARNESS_CREATED_MOUNTPOINTS=(/var/lib/vmcluster /etc/vmcluster)

# ---------------------------------------------------------------- helpers

harness_log() { echo "harness: $*" >&2; }

harness_skip() {
	echo "SKIP: $*" >&2
	exit 77
}

harness_now_us() {
	if [[ -n ${EPOCHREALTIME:-} ]]; then
		echo "${EPOCHREALTIME//[!0-9]/}"
	else
		date +%s%6N
	fi
}

# "2.5" -> 2500000; whole or decimal seconds.
harness_seconds_to_us() {
	local whole=${1%%.*} frac=""
	[[ $1 == *.* ]] && frac=${1#*.}
	frac=${frac}000000
	echo $((10#${whole:-0} * 1000000 + 10#${frac:0:6}))
}

harness_elapsed_since() {
	local us=$(($(harness_now_us) - $1))
	printf '%d.%01d' $((us / 1000000)) $((us % 1000000 / 100000))
}

wait_for() {
	local seconds=$1 what=$2
	shift 2
	local deadline=$(($(harness_now_us) + $(harness_seconds_to_us "$seconds")))
	until "$@"; do
		if (($(harness_now_us) >= deadline)); then
			echo "timeout after ${seconds}s waiting for $what" >&2
			return 1
		fi
		sleep 0.1
	done
}

# Runs the script's commands with errexit off (teardown must go on after a
# failure), restoring the caller's setting afterwards.
harness_without_errexit() {
	local had_errexit=0 status=0
	[[ $- == *e* ]] && had_errexit=1
	set +e
	"$@"
	status=$?
	((had_errexit)) && set -e
	return "$status"
}

# ---------------------------------------------------------------- names

harness_switch_netns() { echo "$HARNESS_PREFIX-sw"; }
harness_node_netns() { echo "$HARNESS_PREFIX-n$1"; }
harness_node_netns_file() { echo "/run/netns/$HARNESS_PREFIX-n$1"; }
harness_node_mntns_file() { echo "$HARNESS_RUNDIR/ns/n$1.mnt"; }
harness_node_addr() { echo "$VMC_TEST_NET.$((10 + $1))"; }
harness_test_prefix() { echo "$VMC_TEST_NET.0/24"; }
harness_path_in_node() { echo "$VMC_BUILDDIR/cli:$VMC_BUILDDIR/daemon:$PATH"; }
harness_no_daemon() { [[ ${VMC_HARNESS_NO_DAEMON:-0} == 1 ]]; }

node_dir() {
	harness_check_node "$1" || return 1
	echo "$HARNESS_RUNDIR/n$1"
}

harness_check_node() {
	if [[ ! $1 =~ ^[0-9]+$ ]] || ((10#$1 < 1 || 10#$1 > HARNESS_NODES)); then
		harness_log "no node '$1' (cluster has $HARNESS_NODES nodes)"
		return 1
	fi
}

# ---------------------------------------------------------------- preconditions

harness_require_root_netns() {
	local tool probe
	[[ $(id -u) -eq 0 ]] || harness_skip "cluster tests need root"
	for tool in ip unshare nsenter setsid mount mountpoint findmnt \
		corosync corosync-quorumtool corosync-cmapctl; do
		command -v "$tool" >/dev/null 2>&1 || harness_skip "$tool not found"
	done
	ip netns list >/dev/null 2>&1 || harness_skip "ip netns does not work here"
	probe="$HARNESS_PREFIX-probe"
	ip netns add "$probe" 2>/dev/null ||
		harness_skip "cannot create a network namespace"
	ip netns del "$probe"
}

harness_check_test_net() {
	local octet
	if [[ ! $VMC_TEST_NET =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]]; then
		harness_log "VMC_TEST_NET='$VMC_TEST_NET' is not three octets like 198.51.100"
		return 1
	fi
	for octet in ${VMC_TEST_NET//./ }; do
		((10#$octet <= 255)) || {
			harness_log "VMC_TEST_NET='$VMC_TEST_NET' has an octet over 255"
			return 1
		}
	done
}

# Routes of the root namespace (any table) that cover or lie inside the test
# range, except default routes and a blackhole left by a parallel run.
harness_routes_into_test_range() {
	local net
	net=$(harness_test_prefix)
	{
		ip -4 route show table all root "$net"
		ip -4 route show table all match "$net"
	} | sed 's/[[:space:]]*$//' |
		grep -Ev '^((blackhole|unreachable|prohibit|throw) )?default( |$)' |
		grep -Fvx "blackhole $net" | awk '!seen[$0]++' || true
}

# The test range must reach nothing real: refuse if the machine routes it.
harness_check_test_range_unrouted() {
	local routes
	routes=$(harness_routes_into_test_range)
	if [[ -n $routes ]]; then
		harness_log "refusing to start: the root namespace routes part of $(harness_test_prefix):"
		echo "$routes" >&2
		harness_log "choose a free range with VMC_TEST_NET (three octets)"
		return 1
	fi
}

harness_check_daemon_binaries() {
	local bin
	harness_no_daemon && return 0
	for bin in "$VMC_BUILDDIR/daemon/vmclusterd" "$VMC_BUILDDIR/cli/clusterctl"; do
		[[ -x $bin ]] || {
			harness_log "$bin is missing (build first, or set VMC_BUILDDIR)"
			return 1
		}
	done
}

# A run killed with SIGKILL cannot tear down; say what it left behind.
harness_warn_stale_netns() {
	local name pid
	for name in $(ip netns list 2>/dev/null | awk '{ print $1 }'); do
		[[ $name =~ ^vmc([0-9]+)- ]] || continue
		pid=${BASH_REMATCH[1]}
		[[ -d /proc/$pid ]] && continue
		harness_log "WARNING: namespace $name is left over from a dead run" \
			"(pid $pid); kill what runs in it, then: ip netns del $name"
	done
}

# ---------------------------------------------------------------- cluster_up

cluster_up() {
	local n=${1:-} i started
	if [[ ! $n =~ ^[0-9]+$ ]] || ((n < 1 || n > 200)); then
		harness_log "usage: cluster_up N (1..200)"
		exit 1
	fi
	if [[ -n $HARNESS_RUNDIR ]]; then
		harness_log "cluster_up: a cluster is already up"
		exit 1
	fi
	harness_check_test_net || exit 1
	harness_check_test_range_unrouted || exit 1
	harness_check_daemon_binaries || exit 1
	HARNESS_PCMK=0
	if [[ $HARNESS_PACEMAKER == 1 ]]; then
		harness_pcmk_check_tools
		HARNESS_PCMK=1
	fi
	harness_warn_stale_netns

	trap 'cluster_down $?' EXIT
	trap 'harness_exit_on_signal 130' INT
	trap 'harness_exit_on_signal 143' TERM

	HARNESS_NODES=$n
	harness_add_blackhole || return 1
	harness_make_rundir || return 1
	harness_make_switch || return 1
	for ((i = 1; i <= n; i++)); do
		harness_make_node "$i" || return 1
	done

	started=$(harness_now_us)
	for ((i = 1; i <= n; i++)); do
		harness_start_corosync "$i" || return 1
	done
	harness_wait_while_running corosync "$(harness_node_list)" \
		"$HARNESS_QUORUM_TIMEOUT" "$n members and quorum on every node" \
		harness_all_nodes_see_members "$n" || return 1
	harness_log "$n nodes quorate $(harness_elapsed_since "$started")s after corosync start"

	harness_write_fence_agent || return 1
	if ! harness_no_daemon; then
		for ((i = 1; i <= n; i++)); do
			harness_start_watchdog "$i" || return 1
			harness_start_vmclusterd "$i" || return 1
		done
		harness_wait_while_running vmclusterd "$(harness_node_list)" \
			"$HARNESS_START_TIMEOUT" "clusterctl status on every node" \
			harness_all_daemons_answer || return 1
	fi
	harness_pcmk_on || return 0
	harness_pcmk_up
}

harness_exit_on_signal() {
	trap - INT TERM
	exit "$1"
}

harness_add_blackhole() {
	local net
	net=$(harness_test_prefix)
	if [[ -z $(ip -4 route show exact "$net" type blackhole) ]]; then
		ip -4 route add blackhole "$net" || return 1
		HARNESS_BLACKHOLE_ADDED=1
	fi
}

harness_make_rundir() {
	local dir
	HARNESS_RUNDIR=$(mktemp -d /tmp/vmc-test.XXXXXX) || return 1
	# Non-root daemons (pacemaker's hacluster) read files below it.
	chmod 755 "$HARNESS_RUNDIR"
	head -c 256 /dev/urandom >"$HARNESS_RUNDIR/authkey"
	chmod 400 "$HARNESS_RUNDIR/authkey"
	# unshare(1) can only persist a mount ns on a private mount.
	mkdir "$HARNESS_RUNDIR/ns"
	mount --bind "$HARNESS_RUNDIR/ns" "$HARNESS_RUNDIR/ns" || return 1
	mount --make-private "$HARNESS_RUNDIR/ns" || return 1
	for dir in "${HARNESS_CREATED_MOUNTPOINTS[@]}"; do
		[[ -d $dir ]] || mkdir -p "$dir"
	done
}

# A netns that says nothing on its own: no IPv6 (no link-local chatter).
harness_add_netns() {
	local name=$1
	ip netns add "$name" || return 1
	if [[ -d /proc/sys/net/ipv6 ]]; then
		ip netns exec "$name" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
			net.ipv6.conf.default.disable_ipv6=1 || return 1
	fi
	ip -n "$name" link set lo up
}

harness_make_switch() {
	local sw
	sw=$(harness_switch_netns)
	harness_add_netns "$sw" || return 1
	ip -n "$sw" link add br0 type bridge stp_state 0 forward_delay 0 || return 1
	ip -n "$sw" link set br0 up
}

harness_make_node() {
	harness_make_node_net "$1" &&
		harness_make_node_dirs "$1" &&
		{ ! harness_pcmk_on || harness_pcmk_make_dirs "$1"; } &&
		harness_make_node_mntns "$1" &&
		harness_write_corosync_conf "$1"
}

harness_make_node_net() {
	local i=$1 sw ns
	sw=$(harness_switch_netns)
	ns=$(harness_node_netns "$i")
	harness_add_netns "$ns" || return 1
	ip -n "$sw" link add "n$i" type veth peer name eth0 netns "$ns" || return 1
	ip -n "$sw" link set "n$i" master br0 up || return 1
	ip -n "$ns" addr add "$(harness_node_addr "$i")/24" dev eth0 || return 1
	ip -n "$ns" link set eth0 up
}

harness_make_node_dirs() {
	local dir entry target
	dir=$(node_dir "$1")
	mkdir -p "$dir"
	for entry in "${HARNESS_PRIVATE_DIRS[@]}"; do
		target=${entry%%:*}
		[[ -d $target ]] || continue
		mkdir -p "$dir/${entry#*:}"
		# Same owner and mode as the real one (pacemaker runs as hacluster).
		chown --reference="$target" "$dir/${entry#*:}"
		chmod --reference="$target" "$dir/${entry#*:}"
	done
}

harness_in_node_mntns() {
	local mnt
	mnt=$(harness_node_mntns_file "$1")
	shift
	nsenter --mount="$mnt" -- "$@"
}

harness_make_node_mntns() {
	local i=$1 dir entry target
	dir=$(node_dir "$i")
	touch "$(harness_node_mntns_file "$i")"
	unshare --mount="$(harness_node_mntns_file "$i")" --propagation private true ||
		return 1
	# The new namespace copied the root's mounts, including the other
	# nodes' ns files and /run/netns: detach them, or they would keep
	# those namespaces alive after teardown unmounts the originals.
	harness_in_node_mntns "$i" umount -l "$HARNESS_RUNDIR/ns" || return 1
	if harness_in_node_mntns "$i" mountpoint -q /run/netns; then
		harness_in_node_mntns "$i" umount -l /run/netns || return 1
	fi
	for entry in "${HARNESS_PRIVATE_DIRS[@]}"; do
		target=${entry%%:*}
		[[ -d $target ]] || continue
		harness_in_node_mntns "$i" mount --bind "$dir/${entry#*:}" "$target" ||
			return 1
	done
	harness_in_node_mntns "$i" mount -t tmpfs -o mode=1777,size=256m \
		"$HARNESS_PREFIX-n$i-shm" /dev/shm
}

harness_write_corosync_conf() {
	local i=$1 j nodes quorum_options
	if ((${#HARNESS_NODELIST[@]} > 0)); then nodes=("${HARNESS_NODELIST[@]}"); else read -ra nodes <<<"$(harness_node_list)"; fi
	# HARNESS_QUORUM_OPTIONS: options separated by ";", one per line in the section
	quorum_options=${HARNESS_QUORUM_OPTIONS//;/$'\n'    }
	{
		cat <<-EOF
			# Written by tests/cluster/harness.sh for node $i.
			totem {
			    version: 2
			    cluster_name: vmctest
			    transport: knet
			    token: 1000
			    crypto_cipher: aes256
			    crypto_hash: sha256
			    keyfile: $HARNESS_RUNDIR/authkey
			    interface {
			        linknumber: 0
			    }
			}

			nodelist {
		EOF
		for j in "${nodes[@]}"; do
			cat <<-EOF
				    node {
				        ring0_addr: $(harness_node_addr "$j")
				        nodeid: $j
				        name: node$j
				    }
			EOF
		done
		cat <<-EOF
			}

			quorum {
			    provider: corosync_votequorum
			$quorum_options
			}

			logging {
			    to_stderr: no
			    to_syslog: no
			    to_logfile: yes
			    logfile: /var/log/corosync.log
			    timestamp: on
			}
		EOF
	} >"$(node_dir "$i")/corosync.conf"
}

# ---------------------------------------------------------------- node_exec

node_exec() {
	local i=$1
	harness_check_node "$i" || return 1
	shift
	nsenter --net="$(harness_node_netns_file "$i")" \
		--mount="$(harness_node_mntns_file "$i")" --wd="$PWD" -- \
		env -u NOTIFY_SOCKET PATH="$(harness_path_in_node)" "$@"
}

# Starts CMD in node I in the background, detached from the test shell (its
# own session, reparented), and records its pid in PIDFILE. The pid stays
# the command's own: setsid, nsenter and env all exec.
harness_spawn_in_node() {
	local i=$1 log=$2 pidfile=$3 pid
	shift 3
	pid=$(
		setsid nsenter --net="$(harness_node_netns_file "$i")" \
			--mount="$(harness_node_mntns_file "$i")" -- \
			env -u NOTIFY_SOCKET PATH="$(harness_path_in_node)" "$@" \
			</dev/null >>"$log" 2>&1 &
		echo $!
	)
	echo "$pid" >"$pidfile"
	# Until nsenter has done its setns, the pid is still in the root
	# namespaces; wait so that "runs in the node" means what it says.
	wait_for 5 "pid $pid to enter node $i" harness_pid_entered_node "$i" "$pid"
}

harness_pid_entered_node() {
	harness_pid_runs_in_node "$1" "$2" && return 0
	# Gone or a zombie: it will never enter, stop waiting.
	! grep -qs '^State:[[:space:]]*[^Z]' "/proc/$2/status"
}

# The pid recorded for NAME (corosync|vmclusterd|pacemakerd) still runs in node I.
harness_program_runs() {
	local pidfile
	pidfile="$(node_dir "$1")/$2.pid"
	[[ -f $pidfile ]] && harness_pid_runs_in_node "$1" "$(<"$pidfile")"
}

harness_node_list() { seq -s ' ' 1 "$HARNESS_NODES"; }

# Like wait_for, but stops at once when NAME no longer runs on one of NODES
# (a list like "1 2 3"), so a crash at start fails now, not at the deadline.
harness_wait_while_running() {
	local name=$1 nodes=$2 seconds=$3 what=$4 i
	shift 4
	wait_for "$seconds" "$what" harness_ready_or_dead "$name" "$nodes" "$@" ||
		return 1
	for i in $nodes; do
		harness_program_runs "$i" "$name" && continue
		harness_log "$name exited on node $i, see $(node_dir "$i")/log/"
		return 1
	done
}

harness_ready_or_dead() {
	local name=$1 nodes=$2 i
	shift 2
	for i in $nodes; do
		harness_program_runs "$i" "$name" || return 0
	done
	"$@"
}

harness_start_corosync() {
	local dir
	dir=$(node_dir "$1")
	harness_spawn_in_node "$1" "$dir/log/corosync.out" "$dir/corosync.pid" \
		corosync -f -c "$dir/corosync.conf"
}

# The node's watchdog, outside the node: its FIFO is /run/vmc-watchdog inside.
harness_start_watchdog() {
	local dir pid
	[[ -n $HARNESS_WATCHDOG_MS ]] || return 0
	dir=$(node_dir "$1")
	setsid "$VMC_BUILDDIR/tests/cluster/vmc-watchdog" "$dir/run/vmc-watchdog" "$HARNESS_WATCHDOG_MS" \
		"$(harness_node_netns_file "$1")" "$(harness_node_mntns_file "$1")" \
		</dev/null >>"$dir/log/watchdog.log" 2>&1 &
	pid=$!
	echo "$pid" >"$dir/watchdog.pid"
	HARNESS_OUTSIDE_PIDS+=("$pid")
	wait_for 5 "node $1's watchdog" test -p "$dir/run/vmc-watchdog"
}

# What the harness runs outside the nodes (watchdogs, the VM watcher): a
# power-off leaves them, teardown ends them.
harness_stop_outside() {
	local pid
	for pid in "${HARNESS_OUTSIDE_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
		HARNESS_ENDED_PIDS+=("$pid")
	done
	HARNESS_OUTSIDE_PIDS=()
}

harness_start_vmclusterd() {
	local dir watchdog=/run/vmc-no-watchdog
	dir=$(node_dir "$1")
	[[ -z $HARNESS_WATCHDOG_MS ]] || watchdog=/run/vmc-watchdog
	# VMC_DAEMON_ARGS: extra vmclusterd options for every node (e.g. --vm-memory=1024);
	# the tests' VM files (the guest) live in the run dir.
	# shellcheck disable=SC2086
	harness_spawn_in_node "$1" "$dir/log/vmclusterd.log" "$dir/vmclusterd.pid" \
		"$VMC_BUILDDIR/daemon/vmclusterd" -f --vm-paths="$HARNESS_RUNDIR" \
		--watchdog-device="$watchdog" --cluster-key="$HARNESS_RUNDIR/authkey" \
		--migrate-agent="$VMC_BUILDDIR/agents/migrate/vmcluster-migrate" ${VMC_DAEMON_ARGS:-}
}

node_pid_of() {
	local i=$1 name=$2
	harness_check_node "$i" || return 1
	case $name in
	corosync | vmclusterd | pacemakerd) ;;
	*)
		harness_log "node_pid_of: unknown program '$name'"
		return 1
		;;
	esac
	cat "$(node_dir "$i")/$name.pid"
}

# ---------------------------------------------------------------- processes

harness_ns_inode() { stat -L -c %i "$1" 2>/dev/null || true; }

# Pids whose network namespace is NET_INODE or mount namespace MNT_INODE.
# Zombies have no namespaces left, so they never show up.
harness_pids_in_namespaces() {
	local net=$1 mnt=$2
	{ find /proc/[0-9]*/ns/net /proc/[0-9]*/ns/mnt -maxdepth 0 \
		-printf '%p %l\n' 2>/dev/null || true; } |
		awk -v net="net:[$net]" -v mnt="mnt:[$mnt]" \
			'$2 == net || $2 == mnt { split($1, f, "/"); print f[3] }' |
		sort -un
}

node_pids() {
	local net mnt
	harness_check_node "$1" || return 1
	net=$(harness_ns_inode "$(harness_node_netns_file "$1")")
	mnt=$(harness_ns_inode "$(harness_node_mntns_file "$1")")
	[[ -n $net || -n $mnt ]] || return 0
	harness_pids_in_namespaces "${net:-none}" "${mnt:-none}"
}

harness_pid_runs_in_node() {
	local link
	link=$(readlink "/proc/$2/ns/net" 2>/dev/null) || return 1
	[[ $link == "net:[$(harness_ns_inode "$(harness_node_netns_file "$1")")]" ]]
}

harness_pid_gone_from_node() { ! harness_pid_runs_in_node "$1" "$2"; }

# Kills what it finds; true once nothing is left. Polled, because a
# process may fork between the scan and the kill.
harness_node_killed() {
	local pids
	pids=$(node_pids "$1")
	[[ -z $pids ]] && return 0
	# shellcheck disable=SC2086 # one pid per word
	kill -9 $pids 2>/dev/null
	# shellcheck disable=SC2206 # one pid per word
	HARNESS_ENDED_PIDS+=($pids)
	return 1
}

# Our daemons are reparented to init, which reaps them when it gets to it
# (on some machines a few seconds later). Teardown waits for that so that
# not even a zombie corosync is left when the test exits.
harness_ended_pids_reaped() {
	local pid
	for pid in "${HARNESS_ENDED_PIDS[@]}"; do
		grep -qs '^State:[[:space:]]*Z' "/proc/$pid/status" && return 1
	done
	return 0
}

node_poweroff() {
	harness_check_node "$1" || return 1
	wait_for "$HARNESS_KILL_TIMEOUT" "every process of node $1 to die" \
		harness_node_killed "$1"
}

# SIGTERM, then SIGKILL with a warning after the deadline.
harness_stop_program() {
	local i=$1 name=$2 pid
	harness_program_runs "$i" "$name" || return 0
	pid=$(node_pid_of "$i" "$name")
	kill -TERM "$pid" 2>/dev/null
	HARNESS_ENDED_PIDS+=("$pid")
	wait_for "$HARNESS_STOP_TIMEOUT" "$name (pid $pid) on node $i to exit" \
		harness_pid_gone_from_node "$i" "$pid" 2>/dev/null && return 0
	harness_log "WARNING: $name (pid $pid) on node $i ignored SIGTERM for" \
		"${HARNESS_STOP_TIMEOUT}s, sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null
	wait_for "$HARNESS_KILL_TIMEOUT" "$name (pid $pid) on node $i to die" \
		harness_pid_gone_from_node "$i" "$pid"
}

# Pacemaker first: it moves its resources away and ends its daemons, and
# needs corosync for that.
node_stop() {
	harness_check_node "$1" || return 1
	harness_stop_pacemaker "$1" || return 1
	harness_stop_program "$1" vmclusterd || return 1
	harness_stop_program "$1" corosync
}

harness_corosync_answers() {
	node_exec "$1" corosync-cmapctl -g totem.cluster_name >/dev/null 2>&1
}

harness_daemon_answers() {
	node_exec "$1" clusterctl status >/dev/null 2>&1
}

node_start() {
	local i=$1
	harness_check_node "$i" || return 1
	if harness_program_runs "$i" corosync; then
		harness_log "node_start: corosync already runs on node $i"
		return 1
	fi
	harness_start_corosync "$i" || return 1
	harness_wait_while_running corosync "$i" "$HARNESS_START_TIMEOUT" \
		"corosync to answer on node $i" harness_corosync_answers "$i" || return 1
	if ! harness_no_daemon; then
		harness_start_vmclusterd "$i" || return 1
		harness_wait_while_running vmclusterd "$i" "$HARNESS_START_TIMEOUT" \
			"clusterctl status on node $i" harness_daemon_answers "$i" || return 1
	fi
	harness_pcmk_on || return 0
	harness_start_pacemaker "$i" || return 1
	harness_wait_while_running pacemakerd "$i" "$HARNESS_PCMK_TIMEOUT" \
		"pacemaker on node $i to see it online" pcmk_sees_online "$i" "$i"
}

# ---------------------------------------------------------------- pacemaker

# With HARNESS_PACEMAKER=1, every node runs pacemakerd after its corosync
# (and vmclusterd). Its IPC is libqb's: abstract unix sockets, which are per
# netns, and rings in /dev/shm, a tmpfs per node; its state is under the
# node's private /var/lib/pacemaker (an empty CIB at cluster_up), its log
# the node's /var/log/pacemaker/pacemaker.log. cluster_up configures the
# cluster once, from node 1: fencing on, through one stonith device
# ($HARNESS_PCMK_DEVICE, agent $HARNESS_PCMK_AGENT = the harness's power
# switch) that can fence every node.

harness_pcmk_on() { ((HARNESS_PCMK)); }

harness_pcmk_check_tools() {
	local tool
	for tool in pacemakerd crm_mon crm_attribute crm_resource cibadmin \
		stonith_admin xmllint; do
		command -v "$tool" >/dev/null 2>&1 || harness_skip "HARNESS_PACEMAKER=1: $tool not found"
	done
}

# DST gets SRC's directory tree (directories only, none of its files), each
# with the owner and mode of the original.
harness_copy_dir_tree() {
	local src=$1 dst=$2 sub
	[[ -d $src ]] || return 0
	while IFS= read -r -d '' sub; do
		mkdir -p "$dst/$sub" &&
			chown --reference="$src/$sub" "$dst/$sub" &&
			chmod --reference="$src/$sub" "$dst/$sub" || return 1
	done < <(find "$src" -type d -printf '%P\0')
}

# The daemons running as hacluster write to cib/, pengine/... and refuse to
# start without them: the node's private copies get the directories the
# package made on the host (hacluster:haclient, 750), and none of the
# host's files, so every node starts from an empty CIB.
harness_pcmk_make_dirs() {
	local dir
	dir=$(node_dir "$1")
	harness_copy_dir_tree /var/lib/pacemaker "$dir/lib-pacemaker" &&
		harness_copy_dir_tree /var/log/pacemaker "$dir/log/pacemaker" &&
		harness_copy_dir_tree /run/resource-agents "$dir/run/resource-agents"
}

# Pacemaker's fencer runs only agents named fence_* in /usr/sbin (its
# PCMK__FENCE_BINDIR). The host's /usr/sbin stays untouched: in node I's
# mount namespace alone, a read-only overlay lays a directory holding the
# power switch, as $HARNESS_PCMK_AGENT (a hard link), over the real one.
harness_pcmk_install_agent() {
	local lower=$HARNESS_RUNDIR/pcmk-sbin
	if [[ ! -e $lower/$HARNESS_PCMK_AGENT ]]; then
		mkdir -p "$lower" &&
			ln "$HARNESS_RUNDIR/fence_agent" "$lower/$HARNESS_PCMK_AGENT" || return 1
	fi
	harness_in_node_mntns "$1" mount -t overlay -o "ro,lowerdir=$lower:/usr/sbin" \
		"$HARNESS_PREFIX-n$1-sbin" /usr/sbin
}

# ocf:vmcluster:VMGroup, as make install would put it, with this build's
# clusterctl: in node I's mount namespace alone, a read-only overlay adds
# a vmcluster provider to /usr/lib/ocf/resource.d (the host's stays as it is).
harness_pcmk_install_ocf() {
	local lower=$HARNESS_RUNDIR/pcmk-ocf src
	src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/agents/ocf/VMGroup.in
	if [[ ! -e $lower/vmcluster/VMGroup ]]; then
		mkdir -p "$lower/vmcluster" &&
			sed -e "s|@sbindir[@]|$VMC_BUILDDIR/cli|g" "$src" >"$lower/vmcluster/VMGroup" &&
			chmod 755 "$lower/vmcluster" "$lower/vmcluster/VMGroup" || return 1
	fi
	harness_in_node_mntns "$1" mount -t overlay -o "ro,lowerdir=$lower:/usr/lib/ocf/resource.d" \
		"$HARNESS_PREFIX-n$1-ocf" /usr/lib/ocf/resource.d
}

# pacemakerd reads its settings from the environment (PCMK_*, as from
# /etc/default/pacemaker): its log in the node, nothing to the host's syslog.
harness_start_pacemaker() {
	local dir
	dir=$(node_dir "$1")
	harness_spawn_in_node "$1" "$dir/log/pacemaker.out" "$dir/pacemakerd.pid" \
		PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=none \
		PCMK_blackbox=no pacemakerd
}

# SIGTERM: pacemakerd has the node's resources moved away, ends its
# daemons, then exits. Past the deadline it and its daemons get SIGKILL:
# each daemon is in a session of its own and would outlive it. The other
# nodes then fence this one (its controller died, not a clean leave): wait
# for pcmk_node_is_down before starting it again.
harness_stop_pacemaker() {
	local i=$1 pid daemons
	harness_program_runs "$i" pacemakerd || return 0
	pid=$(node_pid_of "$i" pacemakerd)
	kill -TERM "$pid" 2>/dev/null
	HARNESS_ENDED_PIDS+=("$pid")
	wait_for "$HARNESS_PCMK_STOP_TIMEOUT" "pacemakerd (pid $pid) on node $i to stop" \
		harness_pid_gone_from_node "$i" "$pid" 2>/dev/null && return 0
	daemons=$(pgrep -P "$pid" | paste -sd ' ')
	harness_log "WARNING: pacemakerd (pid $pid) on node $i did not stop in" \
		"${HARNESS_PCMK_STOP_TIMEOUT}s, sending SIGKILL to it and its daemons ($daemons)"
	# shellcheck disable=SC2086 # one pid per word
	kill -KILL "$pid" $daemons 2>/dev/null
	# shellcheck disable=SC2206 # one pid per word
	HARNESS_ENDED_PIDS+=($daemons)
	# shellcheck disable=SC2086 # one pid per word
	wait_for "$HARNESS_KILL_TIMEOUT" "pacemaker (pids $pid $daemons) on node $i to die" \
		harness_pids_gone_from_node "$i" "$pid" $daemons
}

harness_pids_gone_from_node() {
	local i=$1 pid
	shift
	for pid; do
		harness_pid_gone_from_node "$i" "$pid" || return 1
	done
}

harness_pcmk_up() {
	local i started nodes
	nodes=$(harness_node_list)
	started=$(harness_now_us)
	for i in $nodes; do
		harness_pcmk_install_agent "$i" || return 1
		harness_pcmk_install_ocf "$i" || return 1
		harness_start_pacemaker "$i" || return 1
	done
	harness_wait_while_running pacemakerd "$nodes" "$HARNESS_PCMK_TIMEOUT" \
		"a DC and every node online in pacemaker, on every node" \
		harness_pcmk_all_see_all || return 1
	harness_log "pacemaker: DC $(pcmk_dc 1), $HARNESS_NODES nodes online" \
		"$(harness_elapsed_since "$started")s after pacemakerd start"
	harness_pcmk_configure || return 1
	harness_wait_while_running pacemakerd "$nodes" "$HARNESS_PCMK_TIMEOUT" \
		"$HARNESS_PCMK_DEVICE registered on every node and started" \
		harness_pcmk_device_ready || return 1
	harness_log "pacemaker: $HARNESS_PCMK_DEVICE ready" \
		"$(harness_elapsed_since "$started")s after pacemakerd start"
}

# The stonith device: the power switch, for every node (a static list, so
# the fencer never needs to ask the agent which nodes it can fence).
harness_pcmk_device_xml() {
	local d=$HARNESS_PCMK_DEVICE hosts
	hosts=$(harness_node_list | sed 's/[0-9][0-9]*/node&/g')
	cat <<-EOF
		<primitive id="$d" class="stonith" type="$HARNESS_PCMK_AGENT">
		  <instance_attributes id="$d-params">
		    <nvpair id="$d-pcmk_host_list" name="pcmk_host_list" value="$hosts"/>
		    <nvpair id="$d-pcmk_host_check" name="pcmk_host_check" value="static-list"/>
		  </instance_attributes>
		  <operations>
		    <op id="$d-monitor-10s" name="monitor" interval="10s" timeout="20s"/>
		  </operations>
		</primitive>
	EOF
}

# Once, from node 1; the CIB carries it to the others. The device comes
# first, so that fencing is never on without a way to fence.
harness_pcmk_configure() {
	local name value
	node_exec 1 cibadmin --create --scope resources --xml-text "$(harness_pcmk_device_xml)" ||
		return 1
	while read -r name value; do
		node_exec 1 crm_attribute --type crm_config --name "$name" --update "$value" ||
			return 1
	done <<-EOF
		stonith-enabled true
		stonith-timeout 30s
		no-quorum-policy stop
	EOF
}

# crm_mon's XML as node I sees it ("" while pacemaker does not answer).
harness_pcmk_status() {
	node_exec "$1" crm_mon -1 --output-as=xml 2>/dev/null || true
}

# harness_xpath XML EXPR: EXPR's value as a string ("" when it has none).
harness_xpath() {
	xmllint --xpath "$2" - <<<"$1" 2>/dev/null || true
}

# pcmk_dc I: the DC's name ("node2") as node I sees it, "" when none.
pcmk_dc() {
	harness_xpath "$(harness_pcmk_status "$1")" 'string(//current_dc[@present="true"]/@name)'
}

# pcmk_is_idle I: node I has a DC, and it has nothing left to do (S_IDLE):
# what the cluster was asked for has been done, or given up on.
pcmk_is_idle() {
	local dc
	dc=$(pcmk_dc "$1")
	[[ -n $dc ]] && node_exec "$1" crmadmin -q -S "$dc" 2>&1 | grep -qx S_IDLE
}

# pcmk_vmgroup_xml ID GROUP [MONITOR_INTERVAL]: the CIB primitive of an
# ocf:vmcluster:VMGroup resource running GROUP, moved live
# (allow-migrate=true) and kept where it runs (resource-stickiness=100):
# what `pcs resource create ID ocf:vmcluster:VMGroup group=GROUP meta
# allow-migrate=true resource-stickiness=100 op monitor interval=...` writes.
# For cibadmin --create --scope resources --xml-text.
pcmk_vmgroup_xml() {
	local id=$1 group=$2 interval=${3:-10s}
	cat <<XML
<primitive id="$id" class="ocf" provider="vmcluster" type="VMGroup">
  <instance_attributes id="$id-params"><nvpair id="$id-group" name="group" value="$group"/></instance_attributes>
  <meta_attributes id="$id-meta">
    <nvpair id="$id-allow-migrate" name="allow-migrate" value="true"/>
    <nvpair id="$id-stickiness" name="resource-stickiness" value="100"/>
  </meta_attributes>
  <operations>
    <op id="$id-monitor" name="monitor" interval="$interval" timeout="30s"/>
    <op id="$id-migrate_to" name="migrate_to" interval="0" timeout="300s"/>
  </operations>
</primitive>
XML
}

# pcmk_vm_on VM NODE: vmcluster has VM online on NODE and pacemaker runs
# its resource there, and only there (clusterctl vm show, asked on node 1)
pcmk_vm_on() {
	local v
	v=$(node_exec 1 clusterctl --json vm show "$1" 2>/dev/null) || return 1
	[[ $(jq -r '.state + " " + .owner + " " + (.pacemaker.running_on // [] | join(","))' <<<"$v") == "online $2 $2" ]]
}

# pcmk_vm_started VM: pcmk_vm_on wherever VM's owner is
pcmk_vm_started() {
	local owner
	owner=$(node_exec 1 clusterctl --json vm show "$1" 2>/dev/null | jq -r .owner) || return 1
	[[ $owner == node* ]] && pcmk_vm_on "$1" "$owner"
}

# pcmk_exec I CMD...: a pacemaker CLI (crm_mon, crm_resource...) in node I.
pcmk_exec() { node_exec "$@"; }

# pcmk_sees_online I N...: pacemaker on node I has a DC and sees nodes N...
# online (member of the cluster, joined).
pcmk_sees_online() {
	local i=$1 xml n
	shift
	xml=$(harness_pcmk_status "$i")
	[[ $(harness_xpath "$xml" 'string(//current_dc/@present)') == true ]] || return 1
	for n; do
		[[ $(harness_xpath "$xml" "string(//nodes/node[@name='node$n']/@online)") == true ]] ||
			return 1
	done
}

# pcmk_wait_online I N...: waits until pcmk_sees_online I N...
pcmk_wait_online() {
	local i=$1
	shift
	wait_for "$HARNESS_PCMK_TIMEOUT" "pacemaker on node $i to see nodes $* online" \
		pcmk_sees_online "$i" "$@"
}

# pcmk_node_is_down I N: node I's pacemaker knows node N is down (offline
# and not unclean: it left cleanly or was fenced), so its resources may
# run elsewhere. Wait for this before a node_start after a power-off: a
# node that comes back before its fencing is fenced all the same.
pcmk_node_is_down() {
	local xml
	xml=$(harness_pcmk_status "$1")
	[[ $(harness_xpath "$xml" "string(//nodes/node[@name='node$2']/@online)") == false &&
		$(harness_xpath "$xml" "string(//nodes/node[@name='node$2']/@unclean)") == false ]]
}

# pcmk_fence_count I N: how many successful fences of node N node I's
# fencer has in its history (the cluster's, shared by the fencers).
pcmk_fence_count() {
	local xml count
	xml=$(node_exec "$1" stonith_admin --history "node$2" --output-as=xml 2>/dev/null || true)
	count=$(harness_xpath "$xml" "count(//fence_event[@target='node$2'][@status='success'])")
	echo "${count:-0}"
}

# pcmk_node_fenced I N [COUNT]: node N was fenced successfully more than
# COUNT (default 0, a pcmk_fence_count taken before) times, as node I knows.
pcmk_node_fenced() {
	(($(pcmk_fence_count "$1" "$2") > ${3:-0}))
}

# pcmk_device_registered I: node I's fencer has the harness's device.
pcmk_device_registered() {
	node_exec "$1" stonith_admin --list-registered 2>/dev/null |
		grep -Eq "^[[:space:]]*$HARNESS_PCMK_DEVICE\$"
}

harness_pcmk_all_see_all() {
	local i
	for ((i = 1; i <= HARNESS_NODES; i++)); do
		# shellcheck disable=SC2046 # one node number per word
		pcmk_sees_online "$i" $(harness_node_list) || return 1
	done
}

# Registered on every node, and its resource started (its monitor passed).
harness_pcmk_device_ready() {
	local i xml
	for ((i = 1; i <= HARNESS_NODES; i++)); do
		pcmk_device_registered "$i" || return 1
	done
	xml=$(harness_pcmk_status 1)
	[[ $(harness_xpath "$xml" "count(//resource[@id='$HARNESS_PCMK_DEVICE'][@role='Started'][@failed='false'])") == 1 ]]
}

# ---------------------------------------------------------------- watching VMs

# vm_watch_start [-r]: samples every node's QEMUs every 100 ms (vmc-vm-watch)
# into $HARNESS_RUNDIR/vm-watch, a line for each VM seen on two nodes. With
# -r (migration tests), a line only when a VM's vCPUs ran on two nodes in
# two samples in a row: a QEMU that is there but paused does not count.
vm_watch_start() {
	local i files=() opts=()
	if [[ ${1:-} == -r ]]; then opts=(-r); fi
	for ((i = 1; i <= HARNESS_NODES; i++)); do files+=("$(harness_node_netns_file "$i")"); done
	setsid "$VMC_BUILDDIR/tests/cluster/vmc-vm-watch" "${opts[@]}" 100 "$HARNESS_RUNDIR/vm-watch" \
		"${files[@]}" </dev/null >/dev/null 2>&1 &
	HARNESS_VM_WATCH_PID=$!
	HARNESS_OUTSIDE_PIDS+=("$HARNESS_VM_WATCH_PID")
}

# vm_watch_stop: ends it; its samples count is the last line of the file.
vm_watch_stop() {
	[[ -n ${HARNESS_VM_WATCH_PID:-} ]] || return 0
	kill -TERM "$HARNESS_VM_WATCH_PID" 2>/dev/null
	wait_for 5 "the VM watcher to write its count" grep -q '^samples ' "$HARNESS_RUNDIR/vm-watch"
	HARNESS_VM_WATCH_PID=
}

# vm_watch_twice: after vm_watch_stop, prints how many two-node lines the
# watcher recorded (0 for none). Its notes (a QEMU it could not judge and so
# counted as running) go to stderr; no count at all fails.
vm_watch_twice() {
	local file=$HARNESS_RUNDIR/vm-watch
	if ! grep -q '^samples ' "$file" 2>/dev/null; then
		harness_log "vm_watch_twice: $file has no samples line (vm_watch_stop first)"
		return 1
	fi
	grep ' pid [0-9]*: ' "$file" | sed 's/^/harness: vm-watch: /' >&2 || true
	grep -cE '^[0-9]+ [^ ]+( node[0-9]+){2,}$' "$file" || true
}

# ---------------------------------------------------------------- failing storage

# node_faultfs I DIR: DIR, as node I sees it, becomes a vmc-faultfs over
# itself (in node I's mount namespace only), which node_faultfs_mode can
# make fail. It is one of the node's processes: a power-off ends it, and
# the I/O hung in it then fails.
node_faultfs() {
	local i=$1 dir=$2
	harness_check_node "$i" || return 1
	harness_spawn_in_node "$i" "$(node_dir "$i")/log/faultfs.log" "$(node_dir "$i")/faultfs.$(basename "$dir").pid" \
		"$VMC_BUILDDIR/tests/cluster/vmc-faultfs" "$dir" "$dir" || return 1
	wait_for 10 "the fault file system on $dir in node $i" harness_in_node_mntns "$i" mountpoint -q "$dir"
}

# node_faultfs_mode I DIR ok|eio|hang
node_faultfs_mode() {
	harness_in_node_mntns "$1" sh -c 'echo "$1" > "$2/.faultfs"' sh "$3" "$2"
}

# ---------------------------------------------------------------- network

node_partition() {
	harness_check_node "$1" || return 1
	ip -n "$(harness_switch_netns)" link set "n$1" down
}

node_heal() {
	harness_check_node "$1" || return 1
	ip -n "$(harness_switch_netns)" link set "n$1" up
}

# ---------------------------------------------------------------- membership

harness_quorum_status() {
	node_exec "$1" corosync-quorumtool -s 2>/dev/null || true
}

node_member_count() {
	harness_quorum_status "$1" | awk '$1 == "Nodes:" { print $2 }'
}

node_is_quorate() {
	harness_quorum_status "$1" | grep -Eq '^Quorate:[[:space:]]+Yes'
}

node_is_inquorate() {
	harness_quorum_status "$1" | grep -Eq '^Quorate:[[:space:]]+No'
}

# Node I is quorate with exactly N members.
node_sees_members() {
	local status
	status=$(harness_quorum_status "$1")
	grep -Eq '^Quorate:[[:space:]]+Yes' <<<"$status" &&
		[[ $(awk '$1 == "Nodes:" { print $2 }' <<<"$status") == "$2" ]]
}

harness_all_nodes_see_members() {
	local i
	for ((i = 1; i <= HARNESS_NODES; i++)); do
		node_sees_members "$i" "$1" || return 1
	done
}

harness_all_daemons_answer() {
	local i
	for ((i = 1; i <= HARNESS_NODES; i++)); do
		harness_daemon_answers "$i" || return 1
	done
}

# ---------------------------------------------------------------- cluster_down

# STATUS is the test's exit status (the EXIT trap passes it): logs are shown
# only when it is non-zero. Safe to call any number of times.
cluster_down() {
	local status=${1:-0}
	harness_without_errexit harness_tear_down "$status"
	trap - EXIT INT TERM
	return 0
}

harness_tear_down() {
	local status=$1
	if [[ -n $HARNESS_RUNDIR ]]; then
		((status == 0)) || harness_dump_logs
		harness_stop_outside
		harness_kill_all_nodes
		wait_for 5 "init to reap the ended processes" \
			harness_ended_pids_reaped 2>/dev/null
		HARNESS_ENDED_PIDS=()
		harness_unmount_rundir
	fi
	harness_delete_netns
	harness_remove_blackhole
	harness_remove_rundir
	HARNESS_NODES=0
	HARNESS_PCMK=0
}

harness_dump_logs() {
	local i dir log
	for ((i = 1; i <= HARNESS_NODES; i++)); do
		dir="$HARNESS_RUNDIR/n$i/log"
		for log in vmclusterd.log corosync.log corosync.out pacemaker.out; do
			[[ -s $dir/$log ]] || continue
			echo "----- node $i: last 30 lines of $log -----" >&2
			tail -n 30 "$dir/$log" >&2
		done
		# Most of pacemaker's log is CIB diffs at "info": show what it noticed.
		log=pacemaker/pacemaker.log
		[[ -s $dir/$log ]] || continue
		echo "----- node $i: last 40 notices, warnings and errors of $log -----" >&2
		grep -E '[[:space:]](notice|warning|error|crit):' "$dir/$log" | tail -n 40 >&2
	done
}

harness_kill_all_nodes() {
	local i
	for ((i = 1; i <= HARNESS_NODES; i++)); do
		node_poweroff "$i" || harness_log "WARNING: node $i still has processes: $(node_pids "$i")"
	done
}

harness_unmount_rundir() {
	local i mnt
	for ((i = 1; i <= HARNESS_NODES; i++)); do
		mnt=$(harness_node_mntns_file "$i")
		mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
	done
	mountpoint -q "$HARNESS_RUNDIR/ns" && umount "$HARNESS_RUNDIR/ns"
}

# Every netns named with this run's prefix is ours, including the ones a
# failed cluster_up did not get to record.
harness_delete_netns() {
	local name
	for name in $(ip netns list 2>/dev/null | awk '{ print $1 }'); do
		[[ $name == "$HARNESS_PREFIX"-* ]] && ip netns del "$name"
	done
}

harness_remove_blackhole() {
	((HARNESS_BLACKHOLE_ADDED)) || return 0
	ip -4 route del blackhole "$(harness_test_prefix)" && HARNESS_BLACKHOLE_ADDED=0
}

harness_remove_rundir() {
	[[ -n $HARNESS_RUNDIR ]] || return 0
	if [[ $HARNESS_RUNDIR != /tmp/vmc-test.* ]]; then
		harness_log "WARNING: not removing unexpected run dir $HARNESS_RUNDIR"
		return 1
	fi
	if findmnt -rn -o TARGET |
		awk -v dir="$HARNESS_RUNDIR/" 'index($0, dir) == 1 { found = 1 } END { exit !found }'; then
		harness_log "WARNING: $HARNESS_RUNDIR still has mounts, leaving it"
		return 1
	fi
	rm -rf "$HARNESS_RUNDIR"
	HARNESS_RUNDIR=""
}

# nodelist_set NODE...: corosync.conf of every node now lists only these
# nodes; corosync reloads it cluster-wide (corosync-cfgtool -R, run on the
# first of them), with no restart of anything.
nodelist_set() {
	local i
	HARNESS_NODELIST=("$@")
	for ((i = 1; i <= HARNESS_NODES; i++)); do
		harness_write_corosync_conf "$i"
	done
	node_exec "$1" corosync-cfgtool -R >/dev/null
}

# node_start_racing I: like node_start, but returns as soon as vmclusterd is
# spawned, without waiting for it to answer — for tests that kill a node in
# the middle of its join.
node_start_racing() {
	local i=$1
	harness_check_node "$i" || return 1
	harness_start_corosync "$i" || return 1
	harness_wait_while_running corosync "$i" "$HARNESS_START_TIMEOUT" \
		"corosync to answer on node $i" harness_corosync_answers "$i" || return 1
	harness_start_vmclusterd "$i"
}

# node_kill_daemon I: SIGKILL only vmclusterd on node I (its VMs live on);
# node_start_daemon I: start it again and wait until it answers.
node_kill_daemon() {
	local pid
	pid=$(node_pid_of "$1" vmclusterd) || return 1
	kill -KILL "$pid" 2>/dev/null || true
	wait_for 10 "vmclusterd $pid on node $1 to die" harness_pid_gone_from_node "$1" "$pid"
}

node_start_daemon() {
	harness_start_vmclusterd "$1" || return 1
	harness_wait_while_running vmclusterd "$1" "$HARNESS_START_TIMEOUT" \
		"clusterctl status on node $1" harness_daemon_answers "$1"
}

# The test cluster's power switch: $HARNESS_RUNDIR/fence_agent, a
# fence-agents-style executable (options on stdin, "action=off" and
# "plug=nodeN") that any node can run to power another one off, for
# `clusterctl cluster set fence_method=agent fence_agent=...`, and for
# pacemaker's fencer as fence_vmctest (harness_pcmk_install_agent). Inside a
# node /run/netns is private, so the namespace inodes of every node are
# written out for it, and it kills by those (never by process name). Every
# run leaves a line in $HARNESS_RUNDIR/fence_agent.log, so a test can tell
# that it ran, from which node, and what it found.
harness_write_fence_agent() {
	local i agent=$HARNESS_RUNDIR/fence_agent
	for ((i = 1; i <= HARNESS_NODES; i++)); do
		echo "$(harness_ns_inode "$(harness_node_netns_file "$i")") $(harness_ns_inode "$(harness_node_mntns_file "$i")")" \
			>"$HARNESS_RUNDIR/n$i.nsids"
	done
	{
		echo '#!/bin/bash'
		echo "# fence agent of test cluster $HARNESS_RUNDIR (written by tests/cluster/harness.sh)"
		printf 'rundir=%q agent_name=%q\n' "$HARNESS_RUNDIR" "$HARNESS_PCMK_AGENT"
		cat <<'AGENT'
set -u
action="" plug=""
while IFS='=' read -r key value || [[ -n $key ]]; do
	case $key in
	action | option) action=$value ;;
	plug | port | nodename) plug=$value ;;
	esac
done

# "nodeN" with a node of this cluster: prints N.
node_number() {
	[[ $1 =~ ^node([0-9]+)$ && -r $rundir/n${BASH_REMATCH[1]}.nsids ]] || return 1
	echo "${BASH_REMATCH[1]}"
}

# The pids of node N: those in its network or its mount namespace.
node_pids() {
	local net mnt
	read -r net mnt <"$rundir/n$1.nsids" || return 1
	{ find /proc/[0-9]*/ns/net /proc/[0-9]*/ns/mnt -maxdepth 0 -printf '%p %l\n' 2>/dev/null || true; } |
		awk -v net="net:[$net]" -v mnt="mnt:[$mnt]" '$2 == net || $2 == mnt { split($1, f, "/"); print f[3] }' |
		sort -un
}

# Which node runs this agent, for the log.
caller() {
	local ids net
	net=$(stat -L -c %i /proc/$$/ns/net 2>/dev/null)
	for ids in "$rundir"/n*.nsids; do
		[[ $(cut -d' ' -f1 "$ids") == "$net" ]] || continue
		ids=$(basename "$ids" .nsids)
		echo "node${ids#n}"
		return
	done
	echo outside
}

# Logs the outcome and ends with STATUS.
finish() {
	local status=$1
	shift
	echo "fence_agent: $*" >&2
	echo "$(date '+%F %T.%N') action=$action plug=$plug by $(caller): $* (exit $status)" >>"$rundir/fence_agent.log"
	exit "$status"
}

metadata() {
	cat <<XML
<?xml version="1.0" ?>
<resource-agent name="$agent_name" shortdesc="Power switch of a tests/cluster test cluster">
<longdesc>Powers a node of the test cluster off by killing every process in its network and mount namespaces. It cannot power a node on: the test does that with node_start.</longdesc>
<vendor-url>file://$rundir</vendor-url>
<parameters>
	<parameter name="action" unique="0" required="1">
		<getopt mixed="-o, --action=[action]" />
		<content type="string" default="reboot" />
		<shortdesc lang="en">Fencing action</shortdesc>
	</parameter>
	<parameter name="plug" unique="0" required="1" obsoletes="port">
		<getopt mixed="-n, --plug=[id]" />
		<content type="string" />
		<shortdesc lang="en">Node to act on (nodeN)</shortdesc>
	</parameter>
	<parameter name="port" unique="0" required="0" deprecated="1">
		<getopt mixed="-n, --plug=[id]" />
		<content type="string" />
		<shortdesc lang="en">Node to act on (nodeN)</shortdesc>
	</parameter>
	<parameter name="nodename" unique="0" required="0">
		<getopt mixed="--nodename=[nodename]" />
		<content type="string" />
		<shortdesc lang="en">Node to act on, when no plug is given</shortdesc>
	</parameter>
</parameters>
<actions>
	<action name="on" automatic="0" />
	<action name="off" />
	<action name="reboot" />
	<action name="status" />
	<action name="list" />
	<action name="monitor" />
	<action name="metadata" />
	<action name="validate-all" />
</actions>
</resource-agent>
XML
}

case $action in
metadata | meta-data)
	metadata
	exit 0
	;;
monitor)
	# The switch itself: it works while the cluster's files are there.
	[[ -r $rundir/n1.nsids ]] || finish 1 "no test cluster at $rundir"
	exit 0
	;;
list)
	for ids in "$rundir"/n*.nsids; do basename "$ids" .nsids | sed 's/^n/node/'; done
	exit 0
	;;
validate-all)
	[[ -z $plug ]] || node_number "$plug" >/dev/null || finish 1 "no node '$plug'"
	exit 0
	;;
esac

n=$(node_number "$plug") || finish 1 "no node '$plug'"
case $action in
status)
	# fence-agents: 0 on, 2 off.
	if [[ -n $(node_pids "$n") ]]; then echo "Status: ON"; exit 0; fi
	echo "Status: OFF"
	exit 2
	;;
on)
	# Refused rather than faked: powering a test node on means node_start
	# in the test shell (corosync.conf, pid files, the daemons' options),
	# which the agent cannot do, and a success would tell pacemaker
	# (unfencing, the "on" half of a remapped reboot) that a node runs
	# when nothing was started.
	finish 1 "cannot power $plug on (the test does that with node_start)"
	;;
off | reboot)
	# A reboot is an off here: the node stays off until the test starts it.
	for round in 1 2 3 4 5; do
		pids=$(node_pids "$n")
		[[ -z $pids ]] && finish 0 "$plug is off"
		kill -KILL $pids 2>/dev/null
		sleep 0.2
	done
	finish 1 "$plug still has processes"
	;;
*)
	finish 1 "action '$action' not supported"
	;;
esac
AGENT
	} >"$agent"
	chmod 755 "$agent"
}
