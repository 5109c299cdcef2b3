#!/bin/bash
# Cluster-wide settings are replicated like everything else; bad values are
# refused naming the setting; status warns on every call while fencing is
# unset or explicitly disabled.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
. "$here/assert.sh"
harness_require_root_netns

cluster_up 3
for i in 1 2 3; do wait_for 30 "node $i quorate" node_sees "$i" 3 true; done

expect_eq "fencing starts unset" unset "$(node_exec 1 clusterctl --json cluster show | jq -r .fence_method)"
err=$(node_exec 2 clusterctl status 2>&1 >/dev/null)
expect "status warns that fencing is not configured" grep -q "warning: fencing is not configured" <<<"$err"

expect "cluster set on node 2" node_exec 2 clusterctl cluster set fence_method=none accel=tcg fence_timeout_s=30
wait_for 30 "digests to agree" nodes_agree 1 2 3
for i in 1 2 3; do
	expect_eq "node $i sees fence_method none" none "$(node_exec "$i" clusterctl --json cluster show | jq -r .fence_method)"
	expect_eq "node $i sees accel tcg" tcg "$(node_exec "$i" clusterctl cluster show | awk '$1 == "accel" { print $2 }')"
done
err=$(node_exec 3 clusterctl --json status 2>&1 >/dev/null)
expect "status --json still warns on stderr that fencing is disabled" grep -q "warning: fencing is disabled" <<<"$err"
expect_eq "status --json lists the warning" 1 "$(node_exec 3 clusterctl --json status 2>/dev/null | jq '.warnings | length')"

version=$(status_field 1 .config_version)
check_refused() { # EXPECTED-SUBSTRING ASSIGNMENT...
	local want=$1 out rc
	shift
	set +e
	out=$(node_exec 1 clusterctl cluster set "$@" 2>&1)
	rc=$?
	set -e
	if [[ $rc -eq 2 && $out == *"$want"* ]]; then pass "cluster set $* refused: $out"; else fail "cluster set $*: exit $rc: $out"; fi
}
check_refused "setting 'fence_method'" fence_method=maybe
check_refused "setting 'fence_agent': fence_method=agent needs one" fence_method=agent
check_refused "not an executable" fence_method=agent fence_agent=/nonexistent/fence_x
check_refused "setting 'fence_timeout_s'" fence_timeout_s=0
check_refused "setting 'accel'" accel=xen
check_refused "setting 'colour': unknown" colour=blue
expect_eq "refused settings changed nothing" "$version" "$(status_field 1 .config_version)"

expect "fence_method=agent with an executable agent" node_exec 1 clusterctl cluster set fence_method=agent fence_agent=/bin/true
err=$(node_exec 1 clusterctl status 2>&1 >/dev/null)
expect_eq "no warning once fencing is configured" "" "$err"

node_stop 2
node_start 2
expect "node 2 back" wait_for 60 "node 2 synced" node_sees 2 3 true
expect_eq "settings survive a restart" /bin/true "$(node_exec 2 clusterctl --json cluster show | jq -r .fence_agent)"

finish
