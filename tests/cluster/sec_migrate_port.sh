#!/bin/bash
# The migration agent's port lets in only a source that holds the cluster
# key, for a migration its daemon announced, once. From node 2, against
# node 1's agent (vmc-migrate-probe): a silent peer and a half HELLO are
# dropped at the 5-s read deadline, garbage gets ERROR protocol, an id
# nobody announced ERROR unknown-id, another key ERROR auth, a second
# control channel ERROR id-used, a recorded handshake replayed ERROR auth
# (a new server nonce), a failed attempt without the key does not use the
# id up, nor does one held open at its challenge; silent connections from
# one node (8 at once at most) do not shut another out; each refusal is in
# node 1's log. After 10,000 bad connections in
# a row the same agent still answers, with no thread or fd left over, and
# node 1's log accounts for all of them; the agent listens on node 1's
# address only, and no QEMU started anywhere.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns
probe=$VMC_BUILDDIR/tests/cluster/vmc-migrate-probe
agent_bin=$VMC_BUILDDIR/agents/migrate/vmcluster-migrate
[[ -x $probe ]] || { harness_log "$probe is missing (build it first)"; exit 1; }
flood_n=10000
port=7794

cluster_up 3
addr1=$(harness_node_addr 1)
log1=$(node_dir 1)/log/vmclusterd.log
key=$HARNESS_RUNDIR/authkey
expect "node 1's migration agent is listening" wait_for 30 "node 1's agent" \
	grep -qF "migration agent listening on $addr1:$port" "$log1"

# The agent vmclusterd runs on node 1 (found by its namespace and command line).
agent_pid_of() {
	local i=$1 pid
	for pid in $(node_pids "$i"); do
		if [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == "$agent_bin listen --daemon --listen "* ]]; then
			echo "$pid"
		fi
	done
}
agent=$(agent_pid_of 1)
expect "node 1 runs one listening agent ($agent)" test "$(wc -w <<<"$agent")" -eq 1
threads_of() { awk '$1 == "Threads:" { print $2 }' "/proc/$1/status"; }
fds_of() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }
fds_before=$(fds_of "$agent")

# Each node's agent listens on its own migration address only: no wildcard.
for i in 1 2 3; do
	listening=$(node_exec "$i" ss -Hltn "sport = :$port" | awk '{ print $4 }' | sort -u | tr '\n' ' ')
	expect_eq "node $i listens on port $port at $(harness_node_addr "$i") only" "$(harness_node_addr "$i"):$port " "$listening"
done
expect "node 1's listening socket is its agent's" bash -c \
	"nsenter --net=$(harness_node_netns_file 1) ss -Hltnp 'sport = :$port' | grep -q 'pid=$agent,'"

# probe WHAT CASE [ARGS]: runs the probe from node 2, shows what it said;
# PASS when it exits 0 (refused as it must be). Sets out and peer (the
# connection the verdict is about).
probe() {
	local what=$1 rc
	shift
	set +e
	out=$(node_exec 2 "$probe" --key-file "$key" --to "$addr1:$port" "$@" 2>&1)
	rc=$?
	set -e
	sed 's/^/    /' <<<"$out"
	peer=$(sed -En 's/^(ok|FAIL): [^:]*(: then unknown-id)?: ([0-9.]+:[0-9]+): .*/\3/p' <<<"$out" | tail -1)
	expect_eq "$what" 0 "$rc"
}
# logged PEER CODE: node 1's daemon logged refusing PEER with CODE.
logged() {
	wait_for 10 "node 1 to log refusing $1 ($2)" \
		grep -qF "migration listener refused a connection from $1: $2: " "$log1"
}
# The daemon logs at most 10 refusals one by one per 10 s, then one
# "refused N more connections" line when the next refusal comes after the
# window (daemon/migrations.c). The 9 refusals checked one by one below
# all come before the flood, within one window. This counts both kinds.
refusals_logged() {
	local one_by_one summed
	one_by_one=$(grep -cF "migration listener refused a connection from " "$log1" || true)
	summed=$(sed -En 's/.* migration listener refused ([0-9]+) more connections in the last .*/\1/p' "$log1" |
		awk '{ s += $1 } END { print s + 0 }')
	echo $((one_by_one + summed))
}
# The daemon says {"expect": ...} on its agent's stdin only once a
# migration to its node is decided, which takes a VM and a QEMU. The checks
# of a handshake on an expected id need only that line: the test writes
# it into the agent's stdin as the daemon would, for a VM that does not
# exist (nothing is ever offered for it, so no QEMU is asked for).
announce() {
	# (a HELLO that comes before the agent has read it waits for it, up to 3 s)
	printf '{"expect":{"id":"%s","vm":"probe-vm"}}\n' "$1" >"/proc/$agent/fd/0"
}
new_id() { "$agent_bin" new-id; }

# The two deadline cases take 5 s each: in the background, meanwhile the rest.
bg=$HARNESS_RUNDIR/probe-bg
mkdir -p "$bg"
for c in nokey truncated; do
	node_exec 2 "$probe" --key-file "$key" --to "$addr1:$port" "$c" >"$bg/$c.out" 2>&1 &
	echo $! >"$bg/$c.pid"
done

echo "-- garbage"
probe "random bytes are refused" garbage
expect "and logged as protocol" logged "$peer" protocol

echo "-- unknown-id"
probe "a good HELLO for an id nobody announced is refused" unknown-id
expect "and logged as unknown-id" logged "$peer" unknown-id

echo "-- wrongkey"
id=$(new_id)
announce "$id"
probe "a whole handshake with another cluster key is refused at the PROOF" \
	wrongkey "$id"
expect "and logged as auth" logged "$peer" auth
expect "the listener's own proof checked with the cluster key" grep -q "proof checks with the cluster key" <<<"$out"

echo "-- used-id"
id=$(new_id)
announce "$id"
probe "a second control channel for a migration is refused" used-id "$id"
expect "the first was let in" grep -q "first control channel on $id: WELCOME" <<<"$out"
expect "the second is logged as id-used" logged "$peer" id-used

echo "-- squat"
id=$(new_id)
announce "$id"
probe "a failed attempt without the key does not use up the migration's id" squat "$id"
keyless=$(sed -n 's/^squat: connection from \([0-9.:]*\) .*/\1/p' <<<"$out" | head -1)
expect "the attempt without the key is logged as auth" logged "$keyless" auth

echo "-- replay"
id=$(new_id)
announce "$id"
rec=$HARNESS_RUNDIR/handshake.rec
probe "a genuine handshake is recorded (the library's client engine, WELCOMEd)" record "$id" "$rec"
expect "node 1's agent dropped that migration when the recorder left" wait_for 10 "the recorded migration to end" \
	grep -qF "migration $id failed: no offer from the source" "$log1"
set +e
out=$(node_exec 2 "$probe" --key-file "$key" --to "$addr1:$port" replay "$rec" 2>&1)
set -e
sed 's/^/    /' <<<"$out"
expect "replayed after its migration ended, it is refused at the HELLO (unknown-id)" \
	grep -q "^FAIL: replay: .*: ERROR unknown-id" <<<"$out"
# Announced again, the id lets the replay through to the proof check:
# only the server nonce can stop it there.
announce "$id"
probe "the recorded HELLO and PROOF replayed on a new connection are refused" replay "$rec"
expect "the new CHALLENGE had another server nonce" grep -q "CHALLENGE with another server nonce" <<<"$out"
expect "and the replay is logged as auth" logged "$peer" auth

echo "-- nokey, truncated (5-s read deadline)"
for c in nokey truncated; do
	rc=0
	wait "$(<"$bg/$c.pid")" || rc=$?
	sed 's/^/    /' "$bg/$c.out"
	expect_eq "$c: dropped at the read deadline" 0 "$rc"
	peer=$(sed -En "s/^ok: $c: ([0-9.]+:[0-9]+): .*/\1/p" "$bg/$c.out")
	expect "$c: logged as timeout" logged "${peer:-none}" timeout
done

echo "-- flood $flood_n"
before=$(refusals_logged)
started=$(harness_now_us)
probe "$flood_n bad connections in a row are refused, then a HELLO is still answered" flood "$flood_n"
echo "    (the flood and its check took $(harness_elapsed_since "$started") s)"
expect "every one got the answer its kind expects, at once" grep -q "no connection 0; not the answer expected 0;" <<<"$out"
# A window's count is written when the window ends (10 s).
flood_logged() { (($(refusals_logged) >= before + flood_n)); }
expect "node 1's log accounts for all $flood_n refusals" wait_for 40 "node 1's log of the flood" flood_logged
echo "    node 1's daemon wrote $(grep -cF "migration listener refused" "$log1" || true) lines about refusals in all:"
grep -F "more connections in the last" "$log1" | sed 's/^/    /' || true

echo "-- hog"
# Node 3 holds as many silent connections as it may (8 at once from one
# address); node 2, a source, is still answered meanwhile.
node_exec 3 "$probe" --key-file "$key" --to "$addr1:$port" hog 64 >/dev/null 2>&1 &
hog_pid=$!
hogging() { [[ $(threads_of "$agent") -ge 9 ]]; }
expect "node 3 holds its 8 silent handshakes open on node 1" wait_for 10 "node 3's silent connections" hogging
probe "64 silent connections from node 3 do not shut node 2 out" unknown-id
wait "$hog_pid" || true

echo "-- squatting"
id=$(new_id)
announce "$id"
probe "a HELLO without the key, left open, does not shut the source out (squat-hold)" squat-hold "$id"

echo "-- afterwards"
expect_eq "node 1's agent is the same process" "$agent" "$(agent_pid_of 1)"
expect "node 1's agent never exited" bash -c "! grep -q 'migration listener (pid [0-9]*) exited' '$log1'"
one_thread() { [[ $(threads_of "$agent") == 1 ]]; }
expect "node 1's agent is down to its main thread" wait_for 20 "the agent's connection threads to end" one_thread
expect_eq "node 1's agent holds as many fds as before" "$fds_before" "$(fds_of "$agent")"
no_qemu() {
	local i pid
	for i in 1 2 3; do
		for pid in $(node_pids "$i"); do
			[[ $(readlink "/proc/$pid/exe" 2>/dev/null) != *qemu* ]] || return 1
		done
		[[ -z $(qemu_pids "$i" probe-vm) ]] || return 1
	done
}
expect "no QEMU was started on any node" no_qemu
expect "node 1 is still quorate with 3 up" node_sees 1 3 true

finish
