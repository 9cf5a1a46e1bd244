#!/usr/bin/env bash
# Ingest at scale (issue 3): ONE relay holding N serial consoles (ptys made by ../shared/peers'
# device.py --create), all printing at 115200 baud (11520 B/s) for SECS seconds, with the embedded
# cloud storing it. Measures the relay's CPU (% of one core, over SECS) and RSS (idle, after), the
# cloud's too, and checks zero loss: every framed emission of every console, read back from the
# cloud (raw replay), must be byte-identical to what the device sent (peers/logcheck.py).
# PHASES="cloudcons conserver" also runs conserver on the same N consoles in the same run.
#
#   bash bench/ingest.sh                      # N=1000 SECS=60, ~3 min
#   N=200 SECS=20 PHASES="cloudcons conserver" bash bench/ingest.sh
#
# Knobs: N (1000), SECS (60), RATE (11520), PHASES (cloudcons), CONSOLE_EXTRA (appended to every
# console's relay config, e.g. ', readHoldoffMs: 0'), NODE (run the bin with this node), CC_SCRATCH (/tmp/cc-bench-ingest,
# wiped), PEERS (../shared/peers), CC_CONSERVER_PORT (17882). Everything listens on 127.0.0.1;
# every process started here is stopped by its PID.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PEERS=${PEERS:-$ROOT/../shared/peers}
N=${N:-1000}; SECS=${SECS:-60}; RATE=${RATE:-11520}; PHASES=${PHASES:-cloudcons}
S=${CC_SCRATCH:-/tmp/cc-bench-ingest}; R="$S/results"
PY=${PYTHON:-python3}
# As users run it: the bin through its shebang (which sets node's heap flags). NODE="node --cpu-prof
# ..." runs it through that node instead.
if [ -n "${NODE:-}" ]; then CLI="$NODE $ROOT/bin/cloudcons.js"; else CLI="$ROOT/bin/cloudcons.js"; fi
declare -A PID
log() { echo "[ingest $(date +%T)] $*" >&2; }
start_bg() { local n=$1; shift; "$@" >"$S/$n.out" 2>"$S/$n.err" & PID[$n]=$!; }
stop_bg() { local p=${PID[$1]:-}; [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; PID[$1]=; true; }
cleanup() { for n in relay cloud conserver device; do stop_bg "$n"; done; }
trap cleanup EXIT
ctl() { echo "$2" | socat - "UNIX-CONNECT:$1"; }
wait_for() { local t=$1; shift; for _ in $(seq $((t * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
ulimit -n 65536 2>/dev/null || true

rm -rf "$S"; mkdir -p "$R"

devices() {
  mkdir -p "$S/$1"
  start_bg device $PY "$PEERS/device.py" --create "$S/$1/host" --count "$N" --control "$S/$1/dev.ctl" --tick 0.02
  wait_for 60 test -S "$S/$1/dev.ctl" || { log "device.py did not start"; cat "$S/device.err" >&2; exit 1; }
}

measure() { # name pid...: idle mem, pace everything, cpu over SECS, mem after, device stats
  local name=$1 dctl=$2; shift 2
  $PY "$PEERS/procstat.py" mem "$@" >"$R/$name-mem-idle.json"
  ctl "$dctl" "pace all $RATE $((SECS + 2))" >/dev/null
  sleep 1
  $PY "$PEERS/procstat.py" cpu --secs "$SECS" "$@" >"$R/$name-cpu.json"
  sleep 4
  ctl "$dctl" stats >"$R/$name-device.json"
  $PY "$PEERS/procstat.py" mem "$@" >"$R/$name-mem-after.json"
}

if [[ " $PHASES " == *" cloudcons "* ]]; then
  log "cloudcons: $N consoles, one relay, embedded cloud"
  devices cc
  mkdir -p "$S/cc/data"
  start_bg cloud $CLI cloud --data "$S/cc/data" --host 127.0.0.1 --port 0
  wait_for 30 grep -q 'listening on' "$S/cloud.err" "$S/cloud.out" || { cat "$S/cloud.err" >&2; exit 1; }
  URL=$(grep -ho 'http://127.0.0.1:[0-9]*' "$S/cloud.err" "$S/cloud.out" | head -1)
  $CLI relay-token create edge --data "$S/cc/data" >"$S/cc/relay.tok"
  ADMIN=$(cat "$S/cc/data/admin-token")
  { echo "relay: { name: edge }"; echo "consoles:"; for i in $(seq 0 $((N - 1))); do printf '  cc%03d: { type: serial, device: %s-%03d, baud: 115200%s }\n' "$i" "$S/cc/host" "$i" "${CONSOLE_EXTRA:-}"; done; } >"$S/cc/relay.yaml"
  start_bg relay env CLOUDCONS_RELAY_TOKEN="$(cat "$S/cc/relay.tok")" $CLI relay --config "$S/cc/relay.yaml" --spool "$S/cc/spool" --cloud "$URL"
  up() { [ "$(CLOUDCONS_URL=$URL CLOUDCONS_TOKEN=$ADMIN $CLI ls --json | grep -c '"state": "up"')" -ge "$N" ]; }
  wait_for 120 up || { log "not all consoles up"; tail -5 "$S/relay.err" >&2; exit 1; }
  sleep 2
  measure cloudcons-relay "$S/cc/dev.ctl" "${PID[relay]}" &
  m1=$!
  $PY "$PEERS/procstat.py" cpu --secs "$((SECS + 1))" "${PID[cloud]}" >"$R/cloudcons-cloud-cpu.json"
  wait $m1
  $PY "$PEERS/procstat.py" mem "${PID[cloud]}" >"$R/cloudcons-cloud-mem-after.json"
  drained() { [ -z "$(find "$S/cc/spool" -name '*.seg' -o -name 'sealing-*' | head -1)" ]; }
  t0=$(date +%s); wait_for 300 drained || log "WARN: relay spool still has segments waiting for upload"
  echo "$(( $(date +%s) - t0 ))" >"$R/cloudcons-drain-secs.txt"
  log "spool drained after $(cat "$R/cloudcons-drain-secs.txt") s; reading back every console's stored log"
  mkdir -p "$S/cc/logs"
  for i in $(seq 0 $((N - 1))); do
    name=$(printf 'cc%03d' "$i")
    curl -sf -H "authorization: Bearer $ADMIN" "$URL/v1/consoles/$name/replay?from=0&format=raw" -o "$S/cc/logs/$name.log"
  done
  $PY "$PEERS/logcheck.py" "$S/cc/logs"/*.log >"$R/cloudcons-log.json"
  grep -c 'SPOOL\|UPLOAD REFUSED' "$S/relay.err" >"$R/cloudcons-relay-warnings.txt" || true
  cleanup
fi

if [[ " $PHASES " == *" conserver "* ]]; then
  log "conserver: $N consoles"
  devices cs
  $PY "$PEERS/gen-conserver-cf.py" "$S/cs" "$S/cs/host" "$N" >/dev/null
  start_bg conserver conserver -E -M 127.0.0.1 -p "${CC_CONSERVER_PORT:-17882}" -b "$(( ${CC_CONSERVER_PORT:-17882} + 10 ))" -C "$S/cs/conserver.cf" -P "$S/cs/conserver.passwd"
  # conserver forks its console-holding children over several seconds (63 of them for 1000
  # consoles); procstat measures the process tree it sees when it starts, so wait until every
  # console's logfile exists and the tree has stopped growing.
  ntree() { $PY "$PEERS/procstat.py" mem "${PID[conserver]}" | $PY -c 'import json,sys; print(json.load(sys.stdin)["processes"])'; }
  last=-1; stable=0
  for _ in $(seq 120); do
    n=$(ntree); logs=$(find "$S/cs/logs" -name '*.log' 2>/dev/null | wc -l)
    if [ "$n" = "$last" ] && [ "$logs" -ge "$N" ]; then stable=$((stable + 1)); else stable=0; fi
    [ "$stable" -ge 3 ] && break
    last=$n; sleep 1
  done
  log "conserver: $(ntree) processes, $(find "$S/cs/logs" -name '*.log' | wc -l) logfiles"
  measure conserver "$S/cs/dev.ctl" "${PID[conserver]}"
  $PY "$PEERS/logcheck.py" "$S/cs/logs"/*.log >"$R/conserver-log.json"
  cleanup
fi

$PY - "$R" "$N" "$SECS" <<'EOF'
import json, os, sys
R, n, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def j(f):
    p = os.path.join(R, f)
    return json.load(open(p)) if os.path.exists(p) else None
rows = []
for who, name in (("cloudcons relay", "cloudcons-relay"), ("conserver", "conserver")):
    cpu, idle, after, dev, lg = j(f"{name}-cpu.json"), j(f"{name}-mem-idle.json"), j(f"{name}-mem-after.json"), j(f"{name}-device.json"), j(name.split('-')[0] + "-log.json")
    if not cpu: continue
    c = cpu["cpu_pct_of_one_core"]
    rows.append([who, f"{c} %", f"{c / n:.3f} %", f"{idle['rss_kB_total'] / 1024:.0f} / {after['rss_kB_total'] / 1024:.0f} MB",
                 f"{dev['tx'] / 1e6:.1f} MB", json.dumps({k: lg[k] for k in lg if k in ('emissions', 'intact', 'bad', 'files')}) if lg else '-'])
cl = j("cloudcons-cloud-cpu.json")
if cl:
    a = j("cloudcons-cloud-mem-after.json")
    rows.append(["cloudcons cloud (embedded)", f"{cl['cpu_pct_of_one_core']} %", f"{cl['cpu_pct_of_one_core'] / n:.3f} %", f"- / {a['rss_kB_total'] / 1024:.0f} MB", "-", "-"])
print(f"\n{n} consoles at 115200 baud for {secs} s\n")
print("| process | CPU (% of one core) | CPU per console | RSS idle / after | device sent | stored log check |")
print("|---|---|---|---|---|---|")
for r in rows: print("| " + " | ".join(r) + " |")
EOF
