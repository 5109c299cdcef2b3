#!/bin/bash
# Live migration benchmark (prints figures; never passes or fails on time).
# The test guest moves between QEMUs on this host over 127.0.0.1 (loopback
# only), under TCG, for each guest size and dirty rate, in four ways on
# the same path in the same run:
#   direct  QEMU's own migrate to -incoming tcp:127.0.0.1:PORT;
#   tls     the same through tls-creds-psk objects;
#   plain   vmcluster-migrate listen/send --no-encrypt (-incoming defer);
#   enc     vmcluster-migrate, encrypted (its default).
# QEMU direct and TLS get what the agent sets, but for pause-before-switchover:
# max-bandwidth 100 GiB/s (QEMU's default is 128 MiB/s), downtime-limit
# 300 ms, auto-converge and events on.
#
# One guest is booted per size and dirty rate and then migrated along a
# chain: each migration goes to a fresh QEMU, which is the source of the
# next one; the ways take turns (direct, tls, plain, enc, direct, ...).
# For each migration:
#   total     from the migrate command (for the agent: from the start of
#             vmcluster-migrate send, its connection and handshake included)
#             to the destination's RESUME event (QEMU's time stamp of it);
#   downtime  query-migrate's "downtime" on the source (the agent's own
#             "completed" line is logged next to it);
#   stall     what the guest shows: the serial consoles are time-stamped
#             by the host as the lines come (bench/migrate-helper.py stamp);
#             the largest gap between two "vmc-counter" lines, source and
#             destination logs merged, around the switchover, minus the
#             100 ms between two lines. The guest's clock stops with the
#             VM, so the counter itself never skips: only the host's time
#             stamps show the pause;
#   MiB/s     ram.transferred over QEMU's total-time on the source (from
#             its migrate command to completed: without the agent's
#             connection, which is in "total"), and the same in Gbit/s;
#   sent      ram.transferred;
#   start, pause, end   where the time went, from the source's MIGRATION
#             events: start = the command to "active" (for the agent its
#             connection, handshake and QMP set-up), pause = held at
#             pre-switchover until the agent's migrate-continue (the agent
#             only; inside the downtime), end = the source's "completed"
#             to the destination's RESUME.
# Two things to know when reading the figures: QEMU 7.2 sets no TCP_NODELAY
# on its own migration socket (the agent does), which on loopback alone
# makes "direct" two to three times slower than the same stream over an
# fd with it; and under TCG a guest dirtying 64 MiB/s or more is often
# broken on the destination after a migration of several passes, whichever
# way (QEMU direct as well), hence this check:
# the guest is checked after each migration: a destination whose kernel
# oopses or whose counter stops counts as "guest broken" (the migration's
# figures still count, its counter gap does not), and the chain goes on
# from the source, resumed (it holds the guest as it was at the switchover),
# or from a freshly booted guest. A migration that has not converged after
# 30 s is cancelled (by the agent's own --timeout for the agent); it counts
# for throughput only (what it had sent by then).
# Goals from the issue: plaintext >= 0.98x QEMU direct (throughput);
# encrypted >= 5 Gbit/s and >= 3.5x QEMU TLS; downtime <= QEMU direct's
# + 10 ms; total <= QEMU direct's + 250 ms.
#
# Usage: bench/migrate.sh [RUNS [SIZES [DIRTY_RATES [WAYS]]]]
#   RUNS         migrations per way and cell (default 3)
#   SIZES        guest sizes in MiB (default "256 1024")
#   DIRTY_RATES  MiB/s the guest dirties (default "0 64 256")
#   WAYS         a subset of "direct tls plain enc" (default all four)
# e.g. bench/migrate.sh 1 256 0 "direct plain" for a smoke test. No root
# needed; VMC_BUILDDIR as for tests; VMC_BENCH_KEEP=1 keeps the work
# directory (logs, result lines) and says where it is. The whole run takes
# 15 to 20 minutes on 2 cores.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${VMC_BUILDDIR:-$top/build}
agent=$builddir/agents/migrate/vmcluster-migrate
helper=$top/bench/migrate-helper.py
runs=${1:-3}
sizes=${2:-"256 1024"}
dirty_rates=${3:-"0 64 256"}
ways=${4:-"direct tls plain enc"}
deadline_s=30 # a migration not converged by then is cancelled (it counts for throughput only)

declare -A buffer_for=([256]=200 [1024]=900) # most of the guest's memory
for cmd in qemu-system-x86_64 python3; do
	command -v "$cmd" >/dev/null || { echo "migrate.sh: $cmd is not installed" >&2; exit 1; }
done
[[ -x $agent ]] || { echo "migrate.sh: no $agent (build first)" >&2; exit 1; }

work=$(mktemp -d /tmp/vmc-bench-migrate.XXXXXX)
pids=() # every process we started that may still run: QEMUs, stampers, listeners
cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [[ ${VMC_BENCH_KEEP:-0} == 1 ]]; then
		echo "work directory kept: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# stop PID: ends one of ours and forgets it
stop() {
	local pid=$1 i
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	for i in "${!pids[@]}"; do
		[[ ${pids[$i]} != "$pid" ]] || unset 'pids[i]'
	done
}
qmp() { python3 "$helper" call "$@" >/dev/null; }
now_ms() { date +%s%3N; }
# wait_until S WHAT CMD...: polls CMD every 0.1 s for S seconds
wait_until() {
	local deadline=$(($(now_ms) + $1 * 1000)) what=$2
	shift 2
	until "$@"; do
		if (($(now_ms) > deadline)); then
			echo "migrate.sh: $what: not within the deadline" >&2
			return 1
		fi
		sleep 0.1
	done
}
counter_lines() { grep -c ' vmc-counter ' "$1" 2>/dev/null || true; }
has_counters() { (($(counter_lines "$1") >= $2)); }

guest=$work/guest
"$top/tests/guest/build-guest" "$guest" >/dev/null
mkdir -p "$work/psk"
echo "bench:$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" >"$work/psk/keys.psk"
head -c 64 /dev/urandom >"$work/key"
echo '{"name":"bench"}' >"$work/definition.json"
port=$((20000 + RANDOM % 20000))
results=$work/results.jsonl
: >"$results"

# qemu_start NAME MIB APPEND INCOMING...: a QEMU in $work/NAME (qmp.sock for
# the agent, bench.sock for us, serial.log time-stamped), with its stamper.
declare -A qemu_pid_of stamp_pid_of
qemu_start() {
	local name=$1 mib=$2 append=$3 dir=$work/$1
	shift 3
	mkdir -p "$dir"
	qemu-system-x86_64 -accel tcg -machine pc -m "$mib" -nodefaults -display none -nic none -no-reboot \
		-kernel "$guest/vmlinux" -initrd "$guest/initrd.img" -append "$append" \
		-chardev socket,id=qmp,path="$dir/qmp.sock",server=on,wait=off -mon chardev=qmp,mode=control \
		-chardev socket,id=bench,path="$dir/bench.sock",server=on,wait=off -mon chardev=bench,mode=control \
		-chardev socket,id=ser,path="$dir/serial.sock",server=on,wait=off -serial chardev:ser \
		-object tls-creds-psk,id=tls-server,endpoint=server,dir="$work/psk" \
		-object tls-creds-psk,id=tls-client,endpoint=client,dir="$work/psk",username=bench \
		"$@" >"$dir/qemu.log" 2>&1 &
	qemu_pid_of[$name]=$!
	pids+=($!)
	python3 "$helper" stamp "$dir/serial.sock" "$dir/serial.log" &
	stamp_pid_of[$name]=$!
	pids+=($!)
	qmp "$dir/bench.sock" query-status
}
qemu_stop() { stop "${qemu_pid_of[$1]}"; stop "${stamp_pid_of[$1]}"; }

# migrate_one WAY SRC DST: SRC (running) to a fresh QEMU DST; prints the result line
migrate_one() {
	local way=$1 src=$work/$2 dst=$work/$3 tls='""' id listen_pid rc plain=()
	[[ $way == tls ]] && tls='"tls-client"'
	# tls-creds too: a QEMU that was a TLS destination keeps its server's.
	qmp "$src/bench.sock" migrate-set-parameters "{\"tls-creds\":$tls}" || return 1
	case $way in
	direct | tls)
		qmp "$src/bench.sock" migrate-set-capabilities '{"capabilities":[
			{"capability":"pause-before-switchover","state":false},
			{"capability":"auto-converge","state":true},{"capability":"events","state":true}]}' || return 1
		qmp "$src/bench.sock" migrate-set-parameters '{"max-bandwidth":107374182400,"downtime-limit":300}' || return 1
		qmp "$dst/bench.sock" migrate-set-capabilities '{"capabilities":[{"capability":"events","state":true}]}' || return 1
		if [[ $way == tls ]]; then
			qmp "$dst/bench.sock" migrate-set-parameters '{"tls-creds":"tls-server"}' || return 1
		fi
		python3 "$helper" direct "$src/bench.sock" "$dst/bench.sock" "tcp:127.0.0.1:$port" "$deadline_s"
		;;
	plain | enc)
		id=$("$agent" new-id)
		"$agent" listen --listen "127.0.0.1:$port" --expect "$id" --vm bench --qmp "$dst/qmp.sock" \
			--key-file "$work/key" >"$dst/listen.out" 2>"$dst/listen.err" &
		listen_pid=$!
		pids+=("$listen_pid")
		[[ $way == enc ]] || plain=(--no-encrypt)
		rc=0
		wait_until 10 "the listening agent" grep -q '"listening"' "$dst/listen.out" &&
			python3 "$helper" agent "$src/bench.sock" "$dst/bench.sock" "$dst/send.out" "$deadline_s" -- \
				"$agent" send --vm bench --qmp "$src/qmp.sock" --to "127.0.0.1:$port" --id "$id" \
				--key-file "$work/key" --definition "$work/definition.json" --timeout "$deadline_s" \
				"${plain[@]}" 2>"$dst/send.err" || rc=1
		stop "$listen_pid"
		return $rc
		;;
	esac
}

field() { python3 "$helper" field "$@"; }
alive() { kill -0 "${qemu_pid_of[$1]}" 2>/dev/null; }
# guest_trouble NAME: the first line of a kernel oops or panic on its console, if any
guest_trouble() { grep -a -m1 -E 'BUG:|Oops|Kernel panic|WARNING: CPU|vmc-guest error' "$work/$1/serial.log" | cut -d' ' -f2- || true; }

# boot_source: a fresh guest as $src (the chain starts again); $buffer_got is what its workload holds
boot_source() {
	src=q$((n++))
	qemu_start "$src" "$size" "$append"
	if ! wait_until 120 "the guest's workload" has_counters "$work/$src/serial.log" 10; then
		qemu_stop "$src"
		src=""
		return 1
	fi
	buffer_got=$(grep -a -o 'ready buffer_mib=[0-9]*' "$work/$src/serial.log" | cut -d= -f2)
	grep -a -h 'vmc-guest buffer clamped' "$work/$src/serial.log" | cut -d' ' -f2- || true
}

# after_migration WAY: the result line of SRC -> DST, with the guest's gap and health
after_migration() {
	local line ok gap=null trouble extra=()
	line=$(cat "$work/$dst/result.json")
	ok=$(field "$line" ok)
	if [[ $ok == true ]]; then
		# 1.5 s of the destination's console after it runs: for the gap, and to see the guest is well
		wait_until 10 "counter lines on the destination" has_counters "$work/$dst/serial.log" 15 2>/dev/null || true
		gap=$(python3 "$helper" gap "$work/$src/serial.log" "$work/$dst/serial.log" "$(field "$line" t1_ms)")
		trouble=$(guest_trouble "$dst")
		if [[ -n $trouble ]] || ! alive "$dst" || ! has_counters "$work/$dst/serial.log" 15; then
			extra=(ok=false crashed=true why="$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' \
				"completed, but the guest then failed on the destination ($dst): ${trouble:-no counter lines}")")
		fi
	fi
	python3 "$helper" annotate "$line" size="$size" dirty="$dirty" way="\"$1\"" run="$run" \
		buffer_mib="${buffer_got:-null}" gap_ms="$gap" "${extra[@]}"
}

t_start=$(now_ms)
echo "== vmcluster-migrate against QEMU on 127.0.0.1, $(nproc) CPUs, $(qemu-system-x86_64 --version | head -1), TCG"
echo "   $runs run(s) per way and cell; sizes: $sizes MiB; dirty rates: $dirty_rates MiB/s; ways: $ways"
n=0
for size in $sizes; do
	buffer=${buffer_for[$size]:-$((size * 3 / 4))}
	for dirty in $dirty_rates; do
		append="$(cat "$guest/cmdline") vmc.buffer_mib=$buffer vmc.dirty_mib_s=$dirty"
		src=""
		for ((run = 1; run <= runs; run++)); do
			for way in $ways; do
				if [[ -z $src ]] && ! boot_source; then
					continue
				fi
				dst=q$((n++))
				port=$((port + 1))
				if [[ $way == plain || $way == enc ]]; then
					qemu_start "$dst" "$size" "$append" -incoming defer
				else
					qemu_start "$dst" "$size" "$append" -incoming "tcp:127.0.0.1:$port"
				fi
				migrate_one "$way" "$src" "$dst" >"$work/$dst/result.json" ||
					echo '{"ok": false, "why": "the helper failed (see above)"}' >"$work/$dst/result.json"
				line=$(after_migration "$way")
				echo "$line" >>"$results"
				python3 "$helper" say "$line"
				if [[ $(field "$line" ok) == true ]]; then
					qemu_stop "$src" # paused for good (postmigrate)
					src=$dst
				elif [[ $(field "$line" crashed) == true ]]; then
					# The source still holds the guest as it was at the switchover: resume it
					# there (a rollback) rather than boot again; boot if it does not count on.
					qemu_stop "$dst"
					lines=$(counter_lines "$work/$src/serial.log")
					if ! qmp "$work/$src/bench.sock" cont ||
						! wait_until 5 "the guest resumed on the source" has_counters "$work/$src/serial.log" $((lines + 5)) ||
						[[ -n $(guest_trouble "$src") ]]; then
						qemu_stop "$src"
						src=""
					fi
				else
					qemu_stop "$dst" # the source still runs (QEMU resumes it when cancelled), or died
					if ! alive "$src"; then
						qemu_stop "$src"
						src=""
					fi
				fi
			done
		done
		[[ -z $src ]] || qemu_stop "$src"
	done
done

python3 "$helper" table "$results"

# ---- TODO: quick migration (not implemented in vmcluster-migrate yet).
# When it is: a 1 GiB guest paused + saved + restored by the agent, next to
# QEMU's own stop + save (migrate to "exec:cat > FILE" or fd:FILE) + restore
# (-incoming from the file), both timed from the pause to the restored guest
# running, with the file's size and the guest's counter gap, in its own table.
echo
echo "quick migration (pause + save + restore of a 1 GiB guest, next to QEMU's stop + save + restore): TODO, not implemented yet"
echo "whole run: $((($(now_ms) - t_start) / 1000)) s"
