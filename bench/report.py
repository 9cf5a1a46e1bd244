#!/usr/bin/env python3
"""Table of a bench/conserver-vs-cloudcons.sh run: report.py RESULTS_DIR
Prints the table and writes RESULTS_DIR/summary.json."""
import glob
import json
import os
import sys

R = sys.argv[1]
TARGETS = ["direct", "conserver", "cloudcons"]


def load(name):
    try:
        with open(os.path.join(R, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def lat(d, k):
    try:
        return d["latency_us"][k]
    except (TypeError, KeyError):
        return None


def flood_runs(prefix):
    out = []
    for p in sorted(glob.glob(os.path.join(R, prefix + "-flood-*.json"))):
        if p.endswith(".cpu.json"):
            continue
        d = load(os.path.basename(p)) or {}
        cpu = load(os.path.basename(p)[:-5] + ".cpu.json") or {}
        if d.get("runaway"):
            verdict = "RUNAWAY"
        elif not d:
            verdict = "NO RESULT"
        elif d.get("intact"):
            verdict = "intact"
        elif (d.get("onlcr_undone") or {}).get("intact"):
            verdict = "intact+ONLCR"
        else:
            u = d.get("onlcr_undone") or d
            verdict = ("NO END" if not u.get("end_seen") else "LOST %s B" % u.get("lost_bytes"))
            if d.get("onlcr_undone"):
                verdict += " +ONLCR"
        ins = d.get("inserted_text") or {}
        out.append({"rate_MBps": d.get("rate_MBps"), "verdict": verdict, "intact": bool(d.get("intact")),
                    "inserted_text": ins, "first_difference": d.get("first_difference"),
                    "lines_missing": d.get("lines_missing_by_seq"), "server_cpu_s": cpu,
                    "elapsed_s": d.get("elapsed_s_first_to_last")})
    return out


summary = {"machine": load("machine.json"), "params": load("params.json"), "end": load("end.json"), "targets": {}}
for t in TARGETS + ["cloudcons-opostoff"]:
    e, l = load(t + "-echo.json"), load(t + "-load.json")
    summary["targets"][t] = {
        "echo_idle_us": e and e.get("latency_us"), "echo_idle_timeouts": e and e.get("timeouts"),
        "echo_idle_server_cpu_s": load(t + "-echo.cpu.json"),
        "echo_load_us": l and l.get("latency_us"), "echo_load_timeouts": l and l.get("timeouts"),
        "echo_load_server_cpu_s": load(t + "-load.cpu.json"),
        "flood": flood_runs(t),
    }
summary["logs"] = {"conserver": load("conserver-log.json"), "cloudcons": load("cloudcons-log.json")}
for f in glob.glob(os.path.join(R, "profile-*.json")):
    summary.setdefault("profiles", {})[os.path.basename(f)] = load(os.path.basename(f))
with open(os.path.join(R, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)

T = summary["targets"]


def num(v, fmt="%.0f"):
    return "-" if v is None else fmt % v


def ratio(a, b):
    if a is None or b in (None, 0):
        return "-"
    r = a / b
    return ("%.0fx" if r >= 10 else "%.1fx" if r >= 1 else "%.2gx") % r


m = summary["machine"] or {}
p = summary["params"] or {}
out = []
out.append("=== conserver vs cloudcons (commit %s; %s cores, %s; node %s; load at start %s) ===" % (
    (open(os.path.join(R, "commit.txt")).read().strip() if os.path.exists(os.path.join(R, "commit.txt")) else "?"),
    m.get("nproc"), m.get("cpu_model"), m.get("node"), " ".join((m.get("loadavg") or "").split()[:3])))
hdr = "%-34s %12s %12s %12s %10s" % ("measure", "direct pty", "conserver", "cloudcons", "cc/cs")
out.append(hdr)
out.append("-" * len(hdr))


def row(label, key, k, fmt="%.0f"):
    vals = [lat(T[t][key] and {"latency_us": T[t][key]}, k) for t in TARGETS]
    out.append("%-34s %12s %12s %12s %10s" % (label, *(num(v, fmt) for v in vals), ratio(vals[2], vals[1])))


n_e = (T["cloudcons"]["echo_idle_us"] or T["conserver"]["echo_idle_us"] or T["direct"]["echo_idle_us"] or {}).get("n")
row("echo idle p50 (us) n=%s" % n_e, "echo_idle_us", "p50")
row("echo idle p99 (us)", "echo_idle_us", "p99")
row("echo idle max (us)", "echo_idle_us", "max")
n_l = (T["cloudcons"]["echo_load_us"] or T["conserver"]["echo_load_us"] or T["direct"]["echo_load_us"] or {}).get("n")
row("echo @%sB/s p50 (us) n=%s" % (p.get("rate"), n_l), "echo_load_us", "p50")
row("echo @%sB/s p90 (us)" % p.get("rate"), "echo_load_us", "p90")
row("echo @%sB/s p99 (us)" % p.get("rate"), "echo_load_us", "p99")
row("echo @%sB/s max (us)" % p.get("rate"), "echo_load_us", "max")
to = ["%s/%s" % (T[t]["echo_idle_timeouts"] if T[t]["echo_idle_timeouts"] is not None else "-",
                 T[t]["echo_load_timeouts"] if T[t]["echo_load_timeouts"] is not None else "-") for t in TARGETS]
out.append("%-34s %12s %12s %12s" % ("echo timeouts (idle/load)", *to))


def srv_cpu(c):
    if not c:
        return None
    return sum(v for k, v in c.items() if k != "device")


ec = [srv_cpu(T[t]["echo_idle_server_cpu_s"]) for t in TARGETS]
out.append("%-34s %12s %12s %12s %10s" % ("server CPU ms per idle echo", "-",
                                         *(num(v * 1000 / (n_e + (p.get("echo_warmup") or 0)) if v is not None and n_e else None, "%.3f") for v in ec[1:]),
                                         ratio(ec[2], ec[1])))
notes = []
nruns = max(len(T[t]["flood"]) for t in TARGETS + ["cloudcons-opostoff"])
fmb = (p.get("flood_bytes") or 0) / 1e6
for i in range(nruns):
    cells = []
    rates = []
    for t in TARGETS:
        fl = T[t]["flood"]
        if i < len(fl):
            cells.append(num(fl[i]["rate_MBps"], "%.2f"))
            rates.append(fl[i]["rate_MBps"])
        else:
            cells.append("-")
            rates.append(None)
    out.append("%-34s %12s %12s %12s %10s" % ("flood %g MB run %d: MB/s" % (fmb, i + 1), *cells, ratio(rates[2], rates[1])))
    cells = [(T[t]["flood"][i]["verdict"] if i < len(T[t]["flood"]) else "-") for t in TARGETS]
    out.append("%-34s %12s %12s %12s" % ("  integrity (sha256)", *cells))
    for t in TARGETS:
        if i < len(T[t]["flood"]) and any((T[t]["flood"][i]["inserted_text"] or {}).values()):
            notes.append("%s flood run %d: text inserted into the stream: %s" % (t, i + 1, T[t]["flood"][i]["inserted_text"]))
    cells = [num(srv_cpu(T[t]["flood"][i]["server_cpu_s"]), "%.2f") if i < len(T[t]["flood"]) and t != "direct" else "-" for t in TARGETS]
    out.append("%-34s %12s %12s %12s" % ("  server CPU s (srv tree)", *cells))
oo = T["cloudcons-opostoff"]["flood"]
for i, f in enumerate(oo):
    out.append("%-34s %12s %12s %12s %10s" % ("cloudcons client -opost run %d" % (i + 1), "", "", num(f["rate_MBps"], "%.2f") + " MB/s",
                                             ratio(f["rate_MBps"], T["conserver"]["flood"][i]["rate_MBps"] if i < len(T["conserver"]["flood"]) else None)))
    out.append("%-34s %12s %12s %12s" % ("  integrity / server CPU s", "", "", "%s %s" % (f["verdict"], num(srv_cpu(f["server_cpu_s"]), "%.1fs"))))
for i, f in enumerate(oo):
    if any((f["inserted_text"] or {}).values()):
        notes.append("cloudcons -opost flood run %d: text inserted into the stream: %s" % (i + 1, f["inserted_text"]))
if any("ONLCR" in f["verdict"] for t in T.values() for f in t["flood"]):
    notes.append("+ONLCR: the client's terminal got every \\n as \\r\\n; 'intact+ONLCR' = byte-exact once that is undone, not as received")
out.extend(notes)
lg = summary["logs"]
for name in ("conserver", "cloudcons"):
    d = lg.get(name)
    if d:
        out.append("%s stored log: %d/%d emissions byte-identical (%d B)" % (name, d["intact"], d["emissions"], d["bytes"]))
try:
    if float((m.get("loadavg") or "0").split()[0]) > 1.0:
        out.append("WARNING: load average %s at start: other work on this machine skews the numbers" % " ".join(m["loadavg"].split()[:3]))
except ValueError:
    pass
end = summary["end"] or {}
out.append("elapsed %s s; load at end %s" % (end.get("elapsed_s"), " ".join((end.get("loadavg_end") or "").split()[:3])))
if "profiles" in summary:
    for name, pr in sorted(summary["profiles"].items()):
        if "loader" in name or not pr:
            continue
        for fn, d in pr.items():
            out.append("%s (%s): busy %.0f ms of %.0f ms (start-up %.0f ms left out); top self time:" % (
                name[:-5], fn, d["busy_ms"], d["profile_ms"], d.get("skipped_ms", 0)))
            for r in d["self"][:8]:
                out.append("   %6.1f%%  %8.1f ms  %s" % (r["pct_of_busy"], r["ms"], r["fn"]))
print("\n".join(out))
