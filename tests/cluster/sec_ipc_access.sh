#!/bin/bash
# Only root and members of group haclient may talk to vmclusterd.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns
command -v setpriv >/dev/null || harness_skip "setpriv (util-linux) is missing"
getent group haclient >/dev/null || harness_skip "group haclient is missing (tools/install-deps creates it)"
haclient=$(getent group haclient | cut -d: -f3)
nobody=$(id -u nobody)
nogroup=$(id -g nobody)

cluster_up 1
wait_for 30 "node 1 answers" node_exec 1 clusterctl status >/dev/null

set +e
err=$(node_exec 1 setpriv --reuid="$nobody" --regid="$nogroup" --clear-groups clusterctl status 2>&1 >/dev/null)
rc=$?
set -e
expect_eq "a user outside haclient is refused with exit 5" 5 "$rc"
expect "the refusal says permission denied" grep -q "permission denied" <<<"$err"

set +e
out=$(node_exec 1 setpriv --reuid="$nobody" --regid="$nogroup" --groups="$haclient" clusterctl --json status 2>&1)
rc=$?
set -e
expect_eq "a member of haclient (supplementary group) is let in" 0 "$rc"
expect "and gets the status" grep -q '"quorate"' <<<"$out"

set +e
node_exec 1 setpriv --reuid="$nobody" --regid="$haclient" --clear-groups clusterctl status >/dev/null 2>&1
rc=$?
set -e
expect_eq "a user whose primary group is haclient is let in" 0 "$rc"

finish
