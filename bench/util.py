#!/usr/bin/env python3
"""Small helpers for bench/conserver-vs-cloudcons.sh (stdlib only, /proc based).

  util.py cpu NAME=PID...          CPU seconds (user+sys) used so far by each PID and all
                                   its live descendants, as one JSON object {NAME: secs}
  util.py cpudiff BEFORE AFTER     two `cpu` outputs -> {NAME: secs used in between}
  util.py proftop [--top N] [--skip-ms MS] [--since-epoch SECS] FILE.cpuprofile...
                                   hot functions of V8 CPU profiles (node --cpu-prof):
                                   self time and inclusive time per function, JSON; samples
                                   of the first MS ms, or before wall time SECS (start time
                                   from the file name), are left out (start-up)
  util.py machine                  machine facts, JSON
"""
import json
import os
import platform
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def children_map():
    m = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(")") + 2:].split()[1])
        m.setdefault(ppid, []).append(int(d))
    return m


def ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return 0
    f = s[s.rindex(")") + 2:].split()
    return int(f[11]) + int(f[12])


def tree_secs(pid, m):
    seen, todo, tot = set(), [pid], 0
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        tot += ticks(p)
        todo.extend(m.get(p, []))
    return tot / HZ


def cmd_cpu(args):
    m = children_map()
    out = {}
    for a in args:
        name, pid = a.split("=", 1)
        if pid:
            out[name] = round(tree_secs(int(pid), m), 3)
    print(json.dumps(out))


def cmd_cpudiff(args):
    b, a = json.loads(args[0]), json.loads(args[1])
    print(json.dumps({k: round(a[k] - b.get(k, 0), 3) for k in a}))


def short_url(u):
    if not u:
        return ""
    for key in ("/node_modules/", "/work/main/"):
        i = u.find(key)
        if i >= 0:
            return u[i + (1 if key == "/node_modules/" else len(key)):]
    return u.replace("file://", "").split("/")[-1] if "/" in u else u


def cmd_proftop(args):
    top, skip_ms, since_epoch = 25, 0.0, None
    while args and args[0].startswith("--"):
        if args[0] == "--top":
            top = int(args[1])
        elif args[0] == "--skip-ms":
            skip_ms = float(args[1])
        elif args[0] == "--since-epoch":
            since_epoch = float(args[1])
        args = args[2:]
    result = {}
    for fn in args:
        skip = skip_ms
        if since_epoch is not None:  # CPU.YYYYMMDD.HHMMSS.pid.thread.seq.cpuprofile: local start time
            parts = os.path.basename(fn).split(".")
            try:
                t0 = time.mktime(time.strptime(parts[1] + parts[2], "%Y%m%d%H%M%S"))
                skip = max(skip, (since_epoch - t0) * 1000.0)
            except (IndexError, ValueError):
                pass
        with open(fn) as f:
            prof = json.load(f)
        nodes = {n["id"]: n for n in prof["nodes"]}
        parent = {}
        for n in prof["nodes"]:
            for c in n.get("children", []):
                parent[c] = n["id"]
        # time per sample = following timeDelta
        deltas = prof.get("timeDeltas", [])
        samples = prof.get("samples", [])
        self_us = {}
        elapsed = 0
        skipped = 0
        for i, sid in enumerate(samples):
            elapsed += deltas[i] if i < len(deltas) else 0
            dt = deltas[i + 1] if i + 1 < len(deltas) else 0
            if elapsed < skip * 1000:
                skipped += max(dt, 0)
                continue
            self_us[sid] = self_us.get(sid, 0) + max(dt, 0)
        total = sum(self_us.values()) or 1

        def key(n):
            cf = n["callFrame"]
            return "%s %s:%d" % (cf["functionName"] or "(anonymous)", short_url(cf.get("url")), cf.get("lineNumber", -1) + 1)

        selfk, inclk = {}, {}
        for nid, us in self_us.items():
            k = key(nodes[nid])
            selfk[k] = selfk.get(k, 0) + us
            seen = set()
            p = nid
            while p is not None:
                kk = key(nodes[p])
                if kk not in seen:
                    seen.add(kk)
                    inclk[kk] = inclk.get(kk, 0) + us
                p = parent.get(p)
        idle = sum(us for k, us in selfk.items() if k.startswith("(idle)"))
        busy = total - idle or 1

        def fmt(d):
            rows = sorted(((k, v) for k, v in d.items() if not k.startswith(("(idle)", "(root)"))), key=lambda kv: -kv[1])[:top]
            return [{"fn": k, "ms": round(v / 1000, 1), "pct_of_busy": round(100.0 * v / busy, 1)} for k, v in rows]

        result[os.path.basename(fn)] = {
            "skipped_ms": round(skipped / 1000, 1),
            "profile_ms": round(total / 1000, 1),
            "busy_ms": round(busy / 1000, 1),
            "self": fmt(selfk),
            "inclusive": fmt(inclk),
        }
    print(json.dumps(result, indent=1))


def sh(c):
    try:
        return subprocess.run(c, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception as e:  # noqa
        return repr(e)


def cmd_machine(_args):
    print(json.dumps({
        "nproc": sh("nproc"),
        "cpu_model": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip(),
        "kernel": platform.release(),
        "conserver": sh("dpkg-query -W -f='${Version}' conserver-server"),
        "node": sh("node --version"),
        "python": platform.python_version(),
        "loadavg": open("/proc/loadavg").read().strip(),
        "top": sh("ps -eo pcpu,etime,args --sort=-pcpu | head -6 | cut -c1-120"),
    }))


if __name__ == "__main__":
    cmd, rest = sys.argv[1], sys.argv[2:]
    {"cpu": cmd_cpu, "cpudiff": cmd_cpudiff, "proftop": cmd_proftop, "machine": cmd_machine}[cmd](rest)
