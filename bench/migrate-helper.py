#!/usr/bin/env python3
"""QMP, serial time stamps and the tables for bench/migrate.sh.

Every QEMU of the benchmark has a QMP socket of its own for this helper
(the agent uses the other one) and its serial console on a socket:

  call SOCK COMMAND [ARGS-JSON]   one QMP command; prints its return (JSON)
  stamp SOCK OUT                  copies the serial console to OUT, each line
                                  prefixed with the host's wall clock in ms
  direct SRC DST URI DEADLINE_S   migrate SRC to URI (DST waits on it); one
                                  result line (JSON)
  agent SRC DST OUT DEADLINE_S -- CMD...
                                  runs CMD (vmcluster-migrate send, its stdout
                                  to OUT) instead of "migrate", and gives it
                                  5 s more (its own --timeout cancels); one
                                  result line
  gap SRC_LOG DST_LOG T1_MS       the largest gap between two counter lines,
                                  the two logs merged, from 2 s before T1 (the
                                  destination running) to 1.5 s after it
  annotate LINE KEY=JSON...       the result line with these fields added
  field LINE KEY                  one field of a result line (JSON)
  say LINE                        a result line in words
  table RESULTS                   the tables, from the result lines

A result line: total_ms from the migrate command (or the start of CMD) to
the destination's RESUME event (QEMU's own time stamp of it), then what the
source's query-migrate says once completed: downtime_ms, qemu_total_ms,
transferred (ram.transferred, bytes), dirty_syncs, and marks (when each
MIGRATION status came, ms after the start); for the agent also what its
"completed" and "received" lines said. A failed one: ok false, why, and
what the source had sent by then.
"""
import json
import select
import socket
import statistics
import subprocess
import sys
import time


def now_ms():
    return time.time() * 1000.0


class Qmp:
    """A QMP connection: commands one at a time, events kept as they come."""

    def __init__(self, path, timeout_s=10.0):
        deadline = time.monotonic() + timeout_s
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.buf = b""
        self.events = []
        self.read(timeout_s)  # the greeting
        self.cmd("qmp_capabilities")

    def read(self, timeout_s=30.0):
        """The next message, or None after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                return None
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("QEMU closed its QMP socket")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, args=None):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self.read()
            if reply is None:
                raise TimeoutError(name + ": no answer from QEMU")
            if "event" in reply:
                self.events.append(reply)
            elif "error" in reply:
                raise RuntimeError("%s: %s" % (name, reply["error"]["desc"]))
            else:
                return reply["return"]

    def wait_event(self, name, timeout_s):
        """The event's QEMU time stamp in ms, or None after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while True:
            for ev in self.events:
                if ev["event"] == name:
                    self.events.remove(ev)
                    return stamp_ms(ev)
            msg = self.read(deadline - time.monotonic())
            if msg is None:
                return None
            self.events.append(msg)


def stamp_ms(ev):
    ts = ev["timestamp"]
    return ts["seconds"] * 1000.0 + ts["microseconds"] / 1000.0


def migration_marks(src, t0_ms):
    """When the source's MIGRATION events came, in ms after t0: where the time went."""
    while True:  # what is still on its way (no command is in flight: all are events)
        msg = src.read(0.05)
        if msg is None:
            break
        src.events.append(msg)
    marks = {}
    for ev in src.events:
        if ev["event"] == "MIGRATION":
            marks.setdefault(ev["data"]["status"], round(stamp_ms(ev) - t0_ms, 1))
    return marks


def migration_done(src, timeout_s=10.0):
    """query-migrate on the source once completed with its figures in."""
    deadline = time.monotonic() + timeout_s
    while True:
        info = src.cmd("query-migrate")
        # "completed" is announced before QEMU fills in downtime and total-time.
        if info.get("status") == "completed" and info.get("total-time"):
            return info
        if time.monotonic() > deadline:
            return info
        time.sleep(0.02)


def until_running(src, dst, t0_ms, failed, deadline_s):
    """Waits for the destination's RESUME, checking for a failure each 0.5 s.
    A failure keeps what the source had sent by then, for its throughput."""
    deadline = time.monotonic() + deadline_s
    last = {}
    why = "not running on the destination after %d s" % deadline_s
    while time.monotonic() < deadline:
        t1 = dst.wait_event("RESUME", 0.5)
        if t1 is not None:
            return {"ok": True, "total_ms": round(t1 - t0_ms, 1), "t1_ms": round(t1, 1)}
        info = src.cmd("query-migrate")
        if info.get("status") == "active":
            last = info
        if failed(info.get("status")):
            why = failed(info.get("status"))
            break
    r = {"ok": False, "why": why}
    if last:
        r.update(transferred=last["ram"]["transferred"], qemu_total_ms=last.get("total-time"))
    return r


def source_figures(info):
    ram = info.get("ram", {})
    return {"status": info.get("status"), "downtime_ms": info.get("downtime"),
            "qemu_total_ms": info.get("total-time"), "setup_ms": info.get("setup-time"),
            "transferred": ram.get("transferred"), "dirty_syncs": ram.get("dirty-sync-count")}


def cmd_direct(src_path, dst_path, uri, deadline_s):
    src, dst = Qmp(src_path), Qmp(dst_path)
    t0 = now_ms()
    src.cmd("migrate", {"uri": uri})

    def failed(status):
        return "QEMU's migration " + status if status in ("failed", "cancelled") else None

    r = until_running(src, dst, t0, failed, float(deadline_s))
    if not r["ok"]:
        src.cmd("migrate_cancel")
        return r
    r.update(source_figures(migration_done(src)))
    r["marks"] = migration_marks(src, t0)
    return r


def agent_lines(path):
    lines = {}
    with open(path) as f:
        for line in f:
            try:
                o = json.loads(line)
            except ValueError:
                continue
            lines[o.get("event")] = o
    return lines


def cmd_agent(src_path, dst_path, out, deadline_s, argv):
    src, dst = Qmp(src_path), Qmp(dst_path)
    with open(out, "w") as f:
        t0 = now_ms()
        proc = subprocess.Popen(argv, stdout=f)

        def failed(status):
            if proc.poll() not in (None, 0):
                return "vmcluster-migrate send exited %d" % proc.returncode
            return "QEMU's migration " + status if status in ("failed", "cancelled") else None

        # The agent's own --timeout cancels first: give it 5 s to say so.
        r = until_running(src, dst, t0, failed, float(deadline_s) + 5)
        try:
            proc.wait(timeout=30 if r["ok"] else 1)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if not r["ok"]:
        return r
    r.update(source_figures(migration_done(src)))
    r["marks"] = migration_marks(src, t0)
    said = agent_lines(out)
    r["agent_downtime_ms"] = said.get("completed", {}).get("downtime_ms")
    r["agent_total_ms"] = said.get("received", {}).get("total_ms")
    r["agent_rc"] = proc.returncode
    return r


def cmd_stamp(path, out):
    sock = None
    for _ in range(200):
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            break
        except OSError:
            sock.close()
            sock = None
            time.sleep(0.05)
    if sock is None:
        sys.exit("stamp: cannot connect to " + path)
    pending = b""
    with open(out, "w") as f:
        while True:
            data = sock.recv(4096)
            if not data:
                break
            stamp = now_ms()
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                f.write("%.1f %s\n" % (stamp, line.decode(errors="replace").rstrip("\r")))
            f.flush()


def counter_times(path):
    times = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[1] == "vmc-counter":
                times.append(float(parts[0]))
    return times


def cmd_gap(src_log, dst_log, t1_ms):
    t1 = float(t1_ms)
    times = sorted(t for t in counter_times(src_log) + counter_times(dst_log) if t1 - 2000 <= t <= t1 + 1500)
    gaps = [b - a for a, b in zip(times, times[1:])]
    print(round(max(gaps), 1) if gaps else "null")


# ---- the figures

def marks_of(r):
    """(start, pause, end) in ms: the migrate command (or send's start) to QEMU's
    "active"; the source paused at pre-switchover until the agent says continue
    ("device"); the source's "completed" to the destination's RESUME."""
    m = r.get("marks", {})
    start = m.get("active")
    pause = m["device"] - m["pre-switchover"] if "pre-switchover" in m and "device" in m else None
    end = r["total_ms"] - m["completed"] if "completed" in m else None
    return tuple(None if x is None else round(x, 1) for x in (start, pause, end))


def cmd_say(line):
    r = json.loads(line)
    head = "%(size)4d MiB, %(dirty)3d MiB/s, %(way)-6s run %(run)d: " % r
    if not completed(r):
        sent = ""
        if mib_s(r) is not None:
            sent = " (it had sent %.0f MiB at %.0f MiB/s)" % (r["transferred"] / 1048576.0, mib_s(r))
        print(head + "FAILED: " + r["why"] + sent)
        return
    if r.get("crashed"):
        print(head + "GUEST BROKEN: " + r["why"])
    start, pause, end = marks_of(r)
    agent = ""
    if "agent_rc" in r:
        agent = " (the agent's line: %s ms; its total to received %s ms)" % (r["agent_downtime_ms"], r["agent_total_ms"])
    print(head + "total %.0f ms = start %s + QEMU %d + end %s; downtime %s ms%s; paused at pre-switchover %s ms; "
          "counter gap %s ms; %.0f MiB sent, %.0f MiB/s = %.2f Gbit/s; %d dirty syncs"
          % (r["total_ms"], start, r["qemu_total_ms"], end, r["downtime_ms"], agent,
             "-" if pause is None else "%.1f" % pause, r.get("gap_ms"), r["transferred"] / 1048576.0,
             mib_s(r), gbit_s(r), r["dirty_syncs"] or 0))


def cmd_annotate(line, *fields):
    r = json.loads(line)
    for kv in fields:
        k, v = kv.split("=", 1)
        r[k] = json.loads(v)
    print(json.dumps(r))


def cmd_field(line, key):
    print(json.dumps(json.loads(line).get(key)))


# ---- the tables

WAYS = [("direct", "QEMU direct"), ("tls", "QEMU TLS-PSK"), ("plain", "agent plain"), ("enc", "agent encrypted")]


def completed(r):
    """The migration completed, even if the guest broke after it: QEMU's figures hold."""
    return r.get("ok") or r.get("crashed")


def mib_s(r):
    """ram.transferred over QEMU's total-time; for a migration that did not
    converge, what it had sent over how long it had run."""
    if not r.get("transferred") or not r.get("qemu_total_ms"):
        return None
    return r["transferred"] / 1048576.0 / (r["qemu_total_ms"] / 1000.0)


def gbit_s(r):
    return None if mib_s(r) is None else mib_s(r) * 1048576 * 8 / 1e9


def summary(values):
    """'median (min-max)' of what there is, '-' without."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    def num(x):
        return "%.0f" % x if abs(x) >= 10 else "%.1f" % x

    med = statistics.median(values)
    if len(values) == 1:
        return num(med)
    return "%s (%s-%s)" % (num(med), num(min(values)), num(max(values)))


def median_of(rows, key):
    values = [key(r) for r in rows]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def goal(ok, text):
    return "%s  [%s]" % (text, "met" if ok else "NOT met")


def ratios(cell):
    d, t, p, e = (cell.get(w, []) for w, _ in WAYS)
    tput = lambda rs: median_of(rs, mib_s)
    down = lambda rs: median_of([r for r in rs if completed(r)], lambda r: r["downtime_ms"])
    total = lambda rs: median_of([r for r in rs if completed(r)], lambda r: r["total_ms"])
    out = []
    if tput(d) and tput(p):
        x = tput(p) / tput(d)
        out.append(goal(x >= 0.98, "plain/direct throughput %.2fx (goal >= 0.98x)" % x))
    if tput(e):
        g = tput(e) * 1048576 * 8 / 1e9
        out.append(goal(g >= 5, "encrypted %.2f Gbit/s (goal >= 5)" % g))
        if tput(t):
            x = tput(e) / tput(t)
            out.append(goal(x >= 3.5, "encrypted/TLS throughput %.2fx (goal >= 3.5x)" % x))
    for way, rs in (("plain", p), ("encrypted", e)):
        if down(d) is not None and down(rs) is not None:
            x = down(rs) - down(d)
            out.append(goal(x <= 10, "%s downtime %+.0f ms vs direct (goal <= +10)" % (way, x)))
        if total(d) is not None and total(rs) is not None:
            x = total(rs) - total(d)
            out.append(goal(x <= 250, "%s total %+.0f ms vs direct (goal <= +250)" % (way, x)))
    return out


def crashes(rs):
    n = sum(1 for r in rs if r.get("crashed"))
    return ", %d guest%s broken" % (n, "s" if n > 1 else "") if n else ""


def cmd_table(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    cols = ["way", "total ms", "downtime ms", "stall ms", "MiB/s", "Gbit/s", "sent MiB",
            "start ms", "pause ms", "end ms", "completed"]
    for size in sorted({r["size"] for r in rows}):
        mine = [r for r in rows if r["size"] == size]
        buffers = sorted({r.get("buffer_mib") for r in mine if r.get("buffer_mib")})
        print("\n== %d MiB guest (workload buffer %s MiB): median (min-max) of the runs"
              % (size, "/".join(str(b) for b in buffers) or "?"))
        for dirty in sorted({r["dirty"] for r in mine}):
            cell = {}
            for r in mine:
                if r["dirty"] == dirty:
                    cell.setdefault(r["way"], []).append(r)
            print("\n-- dirtying %d MiB/s" % dirty)
            table = [cols]
            for way, label in WAYS:
                rs = cell.get(way, [])
                if not rs:
                    continue
                # A migration that completed counts, even when the guest broke after it;
                # its counter gap does not. One that did not converge counts for
                # throughput only.
                good = [r for r in rs if completed(r)]
                table.append([label,
                              summary([r["total_ms"] for r in good]),
                              summary([r["downtime_ms"] for r in good]),
                              summary([r["gap_ms"] - 100 for r in good if r.get("ok") and r.get("gap_ms") is not None]),
                              summary([mib_s(r) for r in rs]),
                              summary([gbit_s(r) for r in rs]),
                              summary([r["transferred"] / 1048576.0 for r in good]),
                              summary([marks_of(r)[0] for r in good]),
                              summary([marks_of(r)[1] for r in good]),
                              summary([marks_of(r)[2] for r in good]),
                              "%d/%d%s" % (len(good), len(rs), crashes(rs))])
            widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
            for row in table:
                print("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
            for line in ratios(cell):
                print("  " + line)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    what, args = argv[1], argv[2:]
    if what == "call":
        q = Qmp(args[0], timeout_s=30.0)
        print(json.dumps(q.cmd(args[1], json.loads(args[2]) if len(args) > 2 else None)))
    elif what == "stamp":
        cmd_stamp(*args)
    elif what == "direct":
        print(json.dumps(cmd_direct(*args)))
    elif what == "agent":
        sep = args.index("--")
        print(json.dumps(cmd_agent(*args[:sep], args[sep + 1:])))
    elif what == "gap":
        cmd_gap(*args)
    elif what == "say":
        cmd_say(*args)
    elif what == "annotate":
        cmd_annotate(*args)
    elif what == "field":
        cmd_field(*args)
    elif what == "table":
        cmd_table(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
