#!/bin/bash
#
# include_graph.sh: the daemon's include graph has no cycle
# (tools/include-graph on daemon/), and the check can fail: on a small
# directory with a two-file cycle the tool exits 1 and names the cycle, on
# one without a cycle it exits 0 and prints the graph.
# Exit 0 = pass, 1 = fail.

set -euo pipefail

srcdir=${VMC_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
tool="$srcdir/tools/include-graph"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

status=0
pass() { echo "PASS: $1"; }
fail() {
	echo "FAIL: $1"
	status=1
}

# Runs the tool on $1; sets rc and out (stdout and stderr together).
run() {
	rc=0
	out=$("$tool" "$1" 2>&1) || rc=$?
}

# The source tree's daemon/.
run "$srcdir/daemon"
if [ "$rc" -eq 0 ]; then
	pass "daemon/ has no include cycle (${out##*$'\n'include-graph: })"
else
	fail "daemon/: include-graph exited $rc"
	printf '%s\n' "$out"
fi

# A two-file cycle: a.c includes b.h, b.c includes a.h.
mkdir "$tmp/cycle"
printf '#include "b.h"\n' >"$tmp/cycle/a.c"
printf '#include "a.h"\n' >"$tmp/cycle/b.c"
: >"$tmp/cycle/a.h"
: >"$tmp/cycle/b.h"
run "$tmp/cycle"
if [ "$rc" -eq 1 ] && grep -qx 'include-graph: cycle: a -> b -> a' <<<"$out"; then
	pass "a two-file cycle exits 1 and is named"
else
	fail "a two-file cycle: exit $rc, want 1 and 'include-graph: cycle: a -> b -> a'"
	printf '%s\n' "$out"
fi

# No cycle: own-header, system and other-directory includes are not edges.
mkdir "$tmp/acyclic"
printf '#include "a.h"\n#include "b.h"\n#include "c.h"\n' >"$tmp/acyclic/a.c"
printf '#include "b.h"\n#include <stdio.h>\n#include "lib.h"\n' >"$tmp/acyclic/b.c"
printf '#include "c.h"\n' >"$tmp/acyclic/b.h"
: >"$tmp/acyclic/a.h"
: >"$tmp/acyclic/c.h"
want='a: b c
b: c
c:
include-graph: 3 modules, 3 edges, no cycle'
run "$tmp/acyclic"
if [ "$rc" -eq 0 ] && [ "$out" = "$want" ]; then
	pass "a directory without a cycle exits 0 with its graph"
else
	fail "a directory without a cycle: exit $rc, want 0 and:"
	printf '%s\n--- got:\n%s\n' "$want" "$out"
fi

# A bad argument is a usage error.
run "$tmp/no-such-directory"
if [ "$rc" -eq 2 ]; then
	pass "a missing directory exits 2"
else
	fail "a missing directory: exit $rc, want 2"
fi

exit "$status"
