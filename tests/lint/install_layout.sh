#!/bin/bash
#
# install_layout.sh: `make install` puts what an operator needs where the
# system looks for it (into a scratch DESTDIR): the programs, the man
# pages, the OCF agent in pacemaker's resource.d (ocf:vmcluster:VMGroup,
# calling this build's clusterctl), and the systemd unit in the directory
# systemd's pkg-config names,
# with this build's paths, KillMode=process (VMs outlive the daemon) and a
# stop that runs the shutdown policy but not on a restart.
# Exit 0 = pass, 1 = fail, 77 = skip (no systemd.pc to name the directory).

set -euo pipefail

builddir=${VMC_BUILDDIR:?VMC_BUILDDIR is the build directory}
unitdir=$(sed -n 's/^systemdsystemunitdir = //p' "$builddir/Makefile")
sbindir=$(make -s -C "$builddir" --no-print-directory -f Makefile -f - print-sbindir <<<'print-sbindir: ; @echo $(sbindir)')
if [[ -z $unitdir ]]; then
	echo "SKIP: configure found no systemd unit directory (systemd.pc)"
	exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
pass() { echo "PASS: $1"; }
fail() {
	echo "FAIL: $1"
	status=1
}

make -s -C "$builddir" install DESTDIR="$tmp" >"$tmp.log" 2>&1 || { cat "$tmp.log"; fail "make install failed"; exit 1; }
unit=$tmp$unitdir/vmclusterd.service
[[ -f $unit ]] && pass "the unit is installed into $unitdir" || fail "no $unit"
for p in vmclusterd clusterctl; do
	[[ -x $tmp$sbindir/$p ]] && pass "$sbindir/$p installed" || fail "$sbindir/$p not installed"
done
grep -qx "ExecStart=$sbindir/vmclusterd" "$unit" && pass "ExecStart names $sbindir/vmclusterd" ||
	fail "ExecStart: $(grep ExecStart= "$unit")"
grep -qx 'KillMode=process' "$unit" && pass "KillMode=process" || fail "KillMode is not process"
grep -q "^ExecStop=.*grep -qw restart || exec $sbindir/clusterctl .*node shutdown --wait'$" "$unit" &&
	pass "its stop runs node shutdown, unless the job is a restart" || fail "ExecStop: $(grep ExecStop= "$unit")"
! grep -q '@[a-z]*@' "$unit" && pass "no placeholder left" || fail "placeholders left: $(grep '@[a-z]*@' "$unit")"
ocfdir=$(sed -n 's/^ocfdir = //p' "$builddir/Makefile")
agent=$tmp$ocfdir/vmcluster/VMGroup
[[ -x $agent ]] && pass "the OCF agent is installed as ocf:vmcluster:VMGroup ($ocfdir/vmcluster/VMGroup)" ||
	fail "no executable $agent"
grep -q "^: \"\${CLUSTERCTL:=$sbindir/clusterctl}\"\$" "$agent" && pass "the agent calls $sbindir/clusterctl" ||
	fail "the agent's clusterctl: $(grep 'CLUSTERCTL:=' "$agent")"
for m in man8/vmclusterd.8 man8/clusterctl.8 man5/vmcluster.conf.5 man7/ocf_vmcluster_VMGroup.7; do
	found=$(find "$tmp" -path "*/man/$m" | head -1)
	[[ -n $found ]] && pass "man page $m installed" || fail "man page $m not installed"
done
rm -f "$tmp.log"
exit "$status"
