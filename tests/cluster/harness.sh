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
#
#   $RUNDIR = /tmp/vmc-test.XXXXXX
#     authkey             corosync key shared by the whole test cluster
#     ns/                 private bind mount holding the ni.mnt files
#     ni/                 node i; `node_dir i` prints this path
#       corosync.conf
#       run/ lib-corosync/ lib-vmcluster/ log/ etc-vmcluster/ [lib-pacemaker/]
#       corosync.pid vmclusterd.pid     pids recorded when started
#       log/corosync.log log/corosync.out log/vmclusterd.log
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

# Deadlines, in seconds.
HARNESS_QUORUM_TIMEOUT=60
HARNESS_START_TIMEOUT=30
HARNESS_STOP_TIMEOUT=30
HARNESS_KILL_TIMEOUT=10

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
	harness_no_daemon && return 0
	for ((i = 1; i <= n; i++)); do
		harness_start_watchdog "$i" || return 1
		harness_start_vmclusterd "$i" || return 1
	done
	harness_wait_while_running vmclusterd "$(harness_node_list)" \
		"$HARNESS_START_TIMEOUT" "clusterctl status on every node" \
		harness_all_daemons_answer
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

# The pid recorded for NAME (corosync|vmclusterd) still runs in node I.
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
	corosync | vmclusterd) ;;
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

node_stop() {
	harness_check_node "$1" || return 1
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
	harness_no_daemon && return 0
	harness_start_vmclusterd "$i" || return 1
	harness_wait_while_running vmclusterd "$i" "$HARNESS_START_TIMEOUT" \
		"clusterctl status on node $i" harness_daemon_answers "$i"
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
}

harness_dump_logs() {
	local i dir log
	for ((i = 1; i <= HARNESS_NODES; i++)); do
		dir="$HARNESS_RUNDIR/n$i/log"
		for log in vmclusterd.log corosync.log corosync.out; do
			[[ -s $dir/$log ]] || continue
			echo "----- node $i: last 30 lines of $log -----" >&2
			tail -n 30 "$dir/$log" >&2
		done
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
# `clusterctl cluster set fence_method=agent fence_agent=...`. Inside a
# node /run/netns is private, so the namespace inodes of every node are
# written out for it, and it kills by those (never by process name).
harness_write_fence_agent() {
	local i agent=$HARNESS_RUNDIR/fence_agent
	for ((i = 1; i <= HARNESS_NODES; i++)); do
		echo "$(harness_ns_inode "$(harness_node_netns_file "$i")") $(harness_ns_inode "$(harness_node_mntns_file "$i")")" \
			>"$HARNESS_RUNDIR/n$i.nsids"
	done
	cat >"$agent" <<AGENT
#!/bin/bash
# fence agent of test cluster $HARNESS_RUNDIR (written by tests/cluster/harness.sh)
set -u
action="" plug=""
while IFS='=' read -r key value; do
	case \$key in
	action) action=\$value ;;
	plug | port | nodename) plug=\$value ;;
	esac
done
[[ \$action == off || \$action == reboot ]] || { echo "fence_agent: action '\$action' not supported" >&2; exit 1; }
n=\${plug#node}
ids=$HARNESS_RUNDIR/n\$n.nsids
[[ -r \$ids ]] || { echo "fence_agent: no node '\$plug'" >&2; exit 1; }
read -r net mnt <"\$ids"
for round in 1 2 3 4 5; do
	pids=\$({ find /proc/[0-9]*/ns/net /proc/[0-9]*/ns/mnt -maxdepth 0 -printf '%p %l\\n' 2>/dev/null || true; } |
		awk -v net="net:[\$net]" -v mnt="mnt:[\$mnt]" '\$2 == net || \$2 == mnt { split(\$1, f, "/"); print f[3] }' | sort -un)
	[[ -z \$pids ]] && { echo "fence_agent: \$plug is off" >&2; exit 0; }
	kill -KILL \$pids 2>/dev/null
	sleep 0.2
done
echo "fence_agent: \$plug still has processes" >&2
exit 1
AGENT
	chmod 755 "$agent"
}
