#!/usr/bin/env bash
# conserver vs cloudcons, side by side in ONE run, on identical fake-device ptys
# (../shared/peers/device.py behind a socat pty pair, a fresh pair per phase).
# Every number is measured through the whole path: client -> server -> device -> back.
#
#   direct     bench opens the pty host end itself (the floor, no server)
#   conserver  conserver 8.2.7, plain (-E, no TLS), `console -E` as the client
#              (set up like ../shared/peers/run-conserver-baseline.sh)
#   cloudcons  `cloudcons cloud` + `cloudcons relay` (serial console on the pty),
#              `cloudcons attach` as the client
#
# Measures: keystroke echo p50/p99 on an idle console; keystroke echo p50/p90/p99
# while the same console prints at 115200 baud (as ../shared/peers/nagle-check.sh);
# a flood to the attached client (MB/s, sha256 integrity).  Prints a table, writes
# JSON to $CC_SCRATCH/results.  127.0.0.1 only; every process started here is
# stopped by its PID.
#
# Knobs (env):
#   CC_SCRATCH   scratch dir, must be under /tmp, wiped at start (default /tmp/cc-bench-vs)
#   PEERS        shared peer scripts (default <project>/../shared/peers)
#   PHASES       any of "direct conserver cloudcons" (default: all three)
#   ECHO_N       idle echo probes (2000), ECHO_WARMUP (100)
#   LOAD_N       echo probes while the console prints (1000), LOAD_GAP_MS (10), RATE (11520 B/s)
#   FLOOD_MB     flood size in MB of 10^6 bytes (50), FLOOD_RUNS per target (2)
#   CC_OPOST_OFF 1 (default): also flood cloudcons with the client's terminal already
#                `stty -opost` (shows the transport without the CLI's \n -> \r\n mangling)
#   PROFILE      1: run cloud and relay (and the CLI) under node --cpu-prof; hot functions
#                are summarized into results/profile-*.json (cloud/relay: from the first
#                measurement on; CLI: the last attach, first 1.5 s of start-up left out;
#                each node process also writes one for tsx's loader thread)
#   CC_CONSERVER_PORT (17782), CC_CONSERVER_BASE (17790)
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/peers}
PEERS=$(cd "$PEERS" && pwd) || { echo "no peer scripts at $PEERS"; exit 2; }
export PEERS
S=${CC_SCRATCH:-/tmp/cc-bench-vs}
PORT=${CC_CONSERVER_PORT:-17782}
BASE=${CC_CONSERVER_BASE:-17790}
ECHO_N=${ECHO_N:-2000}
ECHO_WARMUP=${ECHO_WARMUP:-100}
LOAD_N=${LOAD_N:-1000}
LOAD_GAP_MS=${LOAD_GAP_MS:-10}
RATE=${RATE:-11520}
FLOOD_MB=${FLOOD_MB:-50}
FLOOD_RUNS=${FLOOD_RUNS:-2}
CC_OPOST_OFF=${CC_OPOST_OFF:-1}
PROFILE=${PROFILE:-0}
PHASES=${PHASES:-"direct conserver cloudcons"}
PY=${PYTHON:-python3}
NODE=${NODE:-node}
CLI="$NODE $ROOT/bin/cloudcons.js"
BENCH="$PY $PEERS/bench.py"
FLOOD="$PY $HERE/flood.py --peers $PEERS"
UTIL="$PY $HERE/util.py"
R=$S/results
T=300 # per-measurement time limit (s)
FLOOD_BYTES=$((FLOOD_MB * 1000000))
PROBE_ALPHABET='~|^`' # bytes the device never emits, so an echo is never confused with output

case "$S" in /tmp/?*) ;; *) echo "CC_SCRATCH must be under /tmp (it is wiped)"; exit 2 ;; esac
for b in conserver console socat "$PY" "$NODE"; do
  command -v "$b" >/dev/null || { echo "missing $b (apt-get install -y conserver-server conserver-client socat)"; exit 2; }
done
for f in bench.py device.py gen-conserver-cf.py; do
  [ -f "$PEERS/$f" ] || { echo "missing $PEERS/$f"; exit 2; }
done

declare -A PID
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
start_bg() { # NAME CMD... : start in background, remember its PID
  local name=$1; shift
  "$@" >"$S/$name.out" 2>&1 &
  PID[$name]=$!
  log "started $name (pid ${PID[$name]})"
}
stop_bg() { # NAME : TERM, then KILL, by PID only
  local name=$1 p=${PID[$1]:-}
  [ -n "$p" ] || return 0
  if kill -0 "$p" 2>/dev/null; then
    kill "$p" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && { log "WARN: $name did not stop on TERM; KILL"; kill -9 "$p" 2>/dev/null; }
  fi
  wait "$p" 2>/dev/null
  unset "PID[$name]"
  log "stopped $name"
}
cleanup() {
  for n in relay cloud conserver device socat; do stop_bg "$n"; done
  for n in "${!PID[@]}"; do stop_bg "$n"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # SECS CMD... : poll until CMD succeeds
  local secs=$1; shift
  for _ in $(seq $((secs * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
SRV=() # names of the server processes of the current phase (CPU is accounted to them)
cpu_now() { local a=() n; for n in "${SRV[@]}"; do a+=("$n=${PID[$n]:-}"); done; $UTIL cpu "${a[@]}"; }
run_json() { # OUTFILE CMD... : bounded run, stdout JSON to results, server CPU used meanwhile
  local out=$1; shift
  local before after rc
  before=$(cpu_now)
  timeout -k 5 $T "$@" >"$R/$out" 2>"$R/${out%.json}.err"
  rc=$?
  after=$(cpu_now)
  $UTIL cpudiff "$before" "$after" >"$R/${out%.json}.cpu.json"
  [ $rc -eq 0 ] || log "WARN: $out rc=$rc ($(tail -c 300 "$R/${out%.json}.err" | tr '\n' ' '))"
  return 0
}
ctl() { echo "$1" | socat - "UNIX-CONNECT:$S/dev.ctl"; }

device_up() { # socat pty pair + the fake device on its device end
  rm -f "$S/cc-dev" "$S/cc-host"
  start_bg socat socat -d -d "pty,raw,echo=0,link=$S/cc-dev" "pty,raw,echo=0,link=$S/cc-host"
  wait_for 10 test -e "$S/cc-host" -a -e "$S/cc-dev" || { log "socat pty pair did not appear"; exit 1; }
  start_bg device $PY "$PEERS/device.py" --pty "$S/cc-dev" --control "$S/dev.ctl"
  wait_for 10 test -S "$S/dev.ctl" || { log "device did not start"; exit 1; }
}
device_down() { stop_bg device; stop_bg socat; }

# NAME TARGET-ARGS... : the three measurements against one target
measure() {
  local name=$1; shift
  log "$name: idle echo x $ECHO_N"
  run_json "$name-echo.json" $BENCH "$@" --label "$name" echo --n "$ECHO_N" --warmup "$ECHO_WARMUP"
  log "$name: echo x $LOAD_N (every ${LOAD_GAP_MS} ms) while the console prints at $RATE B/s"
  ctl "pace 0 $RATE 600" >/dev/null
  sleep 0.5
  run_json "$name-load.json" $BENCH "$@" --label "$name" echo --n "$LOAD_N" --warmup 20 --gap-ms "$LOAD_GAP_MS" --alphabet "$PROBE_ALPHABET"
  ctl "stop 0" >/dev/null
  sleep 1.5 # the CC-END trailer drains; the next test starts on a quiet console
  for i in $(seq "$FLOOD_RUNS"); do
    log "$name: flood $i/$FLOOD_RUNS, $FLOOD_MB MB"
    run_json "$name-flood-$i.json" $FLOOD "$@" --label "$name" --bytes "$FLOOD_BYTES" --max-secs 240 --save "$R/$name-flood-$i.stream"
    sleep 1
  done
}

rm -rf "$S"
mkdir -p "$R"
$UTIL machine >"$R/machine.json"
git -C "$ROOT" rev-parse --short HEAD >"$R/commit.txt" 2>/dev/null
echo "{\"echo_n\": $ECHO_N, \"echo_warmup\": $ECHO_WARMUP, \"load_n\": $LOAD_N, \"load_gap_ms\": $LOAD_GAP_MS, \"rate\": $RATE, \"flood_bytes\": $FLOOD_BYTES, \"flood_runs\": $FLOOD_RUNS, \"profile\": $PROFILE}" >"$R/params.json"
T0=$(date +%s)

# ------------------------------------------------------------------------ direct (floor)
if [[ " $PHASES " == *" direct "* ]]; then
  log "phase direct: bench opens the pty host end itself"
  device_up
  SRV=(device)
  measure direct --direct "$S/cc-host"
  device_down
fi

# ------------------------------------------------------------------------ conserver, plain
if [[ " $PHASES " == *" conserver "* ]]; then
  log "phase conserver: 1 console (type device, 115200) behind conserver on 127.0.0.1:$PORT, plain"
  device_up
  mkdir -p "$S/cs"
  $PY "$PEERS/gen-conserver-cf.py" "$S/cs" "$S/cc-host" 1 --single
  # -E: accept non-TLS clients; -M: bind 127.0.0.1 only
  start_bg conserver conserver -E -M 127.0.0.1 -p "$PORT" -b "$BASE" -C "$S/cs/conserver.cf" -P "$S/cs/conserver.passwd"
  cs_up() { console -n -M 127.0.0.1 -p "$PORT" -u 2>/dev/null | awk '$2=="up"' | grep -q .; }
  wait_for 20 cs_up || { log "conserver console not up"; cat "$S/conserver.out" >&2; exit 1; }
  sleep 1
  SRV=(conserver device)
  measure conserver --cmd "console -E -n -M 127.0.0.1 -p $PORT -f cc000" --quit '\x05c.'
  $PY "$PEERS/logcheck.py" --strip "$PROBE_ALPHABET" "$S/cs/logs/cc000.log" >"$R/conserver-log.json" 2>/dev/null
  stop_bg conserver
  device_down
fi

# ------------------------------------------------------------------------ cloudcons: cloud + relay + CLI
if [[ " $PHASES " == *" cloudcons "* ]]; then
  log "phase cloudcons: cloud + relay (serial console on the pty) + cloudcons attach"
  device_up
  mkdir -p "$S/cc" "$S/prof"
  SRV_CLI=$CLI # node 20 refuses --cpu-prof in NODE_OPTIONS, so it goes on the command line
  [ "$PROFILE" = 1 ] && SRV_CLI="$NODE --cpu-prof --cpu-prof-dir=$S/prof $ROOT/bin/cloudcons.js"
  # The idle echo probes go back to back (~1000/s), past the 200 messages/s a session may send by
  # default (a hostile-client limit no typist reaches): lifted here so it measures the path.
  start_bg cloud $SRV_CLI cloud --data "$S/cc/data" --host 127.0.0.1 --port 0 --session-msgs-per-sec 1000000
  wait_for 30 grep -q 'listening on' "$S/cloud.out" || { log "cloud did not start"; cat "$S/cloud.out" >&2; exit 1; }
  URL=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$S/cloud.out" | head -1)
  [ -n "$URL" ] || { log "cloud is not on 127.0.0.1"; exit 1; }
  $CLI relay-token create edge --data "$S/cc/data" >"$S/cc/relay.tok" 2>/dev/null
  $CLI token create --user bench --data "$S/cc/data" >"$S/cc/user.tok" 2>/dev/null
  cat >"$S/cc/relay.yaml" <<EOF
consoles:
  cc000: { type: serial, device: $S/cc-host, baud: 115200 }
EOF
  start_bg relay env CLOUDCONS_RELAY_TOKEN="$(cat "$S/cc/relay.tok")" $SRV_CLI relay --config "$S/cc/relay.yaml" --spool "$S/cc/spool" --cloud "$URL" ${CC_RELAY_ARGS:-}
  export CLOUDCONS_URL=$URL CLOUDCONS_TOKEN
  CLOUDCONS_TOKEN=$(cat "$S/cc/user.tok")
  cc_up() { $CLI ls --json | $PY -c 'import json,sys; sys.exit(0 if any(c["name"]=="cc000" and c["state"]=="up" for c in json.load(sys.stdin)) else 1)'; }
  wait_for 30 cc_up || { log "cloudcons console cc000 not up"; cat "$S/cloud.out" "$S/relay.out" >&2; exit 1; }
  SRV=(cloud relay device)
  CC_READY='[attached to cc000: read-write]'
  CC_CMD="$CLI attach cc000"
  if [ "$PROFILE" = 1 ]; then # the CLI too (it exits normally on ^Ec., so the profile is written)
    CC_CMD="$NODE --cpu-prof --cpu-prof-dir=$S/prof/cli $ROOT/bin/cloudcons.js attach cc000"
  fi
  MEAS_START=$(date +%s) # profiles are summarized from here on (start-up left out)
  measure cloudcons --cmd "$CC_CMD" --ready "$CC_READY" --quit '\x05c.'
  if [ "$CC_OPOST_OFF" = 1 ]; then
    for i in $(seq "$FLOOD_RUNS"); do
      log "cloudcons, client tty -opost: flood $i/$FLOOD_RUNS, $FLOOD_MB MB"
      run_json "cloudcons-opostoff-flood-$i.json" $FLOOD --cmd "sh -c 'stty -opost; exec $CC_CMD'" --ready "$CC_READY" --quit '\x05c.' \
        --label cloudcons-opostoff --bytes "$FLOOD_BYTES" --max-secs 240 --save "$R/cloudcons-opostoff-flood-$i.stream"
      sleep 1
    done
  fi
  # The stored log as the cloud serves it (segments + hot tail), exact bytes.
  curl -sf -H "authorization: Bearer $(cat "$S/cc/data/admin-token")" "$URL/v1/consoles/cc000/replay?from=0&format=raw" -o "$S/cc/cc000.log"
  $PY "$PEERS/logcheck.py" --strip "$PROBE_ALPHABET" "$S/cc/cc000.log" >"$R/cloudcons-log.json" 2>/dev/null
  wc -l <"$S/cc/data/audit/cc000.jsonl" >"$R/cloudcons-audit-lines.txt" 2>/dev/null
  grep -c '"missed"\|missed:' "$S/cloud.out" >"$R/cloudcons-missed.txt" 2>/dev/null
  CLOUD_PID=${PID[cloud]} RELAY_PID=${PID[relay]}
  stop_bg relay
  stop_bg cloud
  device_down
  if [ "$PROFILE" = 1 ]; then
    # CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main thread (the
    # others are tsx's loader thread); the CLI writes one per attach (the last one is kept)
    for f in "$S"/prof/*.cpuprofile "$S"/prof/cli/*.cpuprofile; do
      [ -f "$f" ] || continue
      IFS=. read -r _ _ _ fpid fthr _ <<<"$(basename "$f")"
      who=cli; [ "$fpid" = "$CLOUD_PID" ] && who=cloud; [ "$fpid" = "$RELAY_PID" ] && who=relay
      [ "$fthr" = 0 ] || who="$who-loader"
      skip=(--since-epoch "$MEAS_START"); [ "${who%-loader}" = cli ] && skip=(--skip-ms 1500)
      $UTIL proftop --top 25 "${skip[@]}" "$f" >"$R/profile-$who.json"
    done
  fi
fi

echo "{\"elapsed_s\": $(( $(date +%s) - T0 )), \"loadavg_end\": \"$(cat /proc/loadavg)\"}" >"$R/end.json"
$PY "$HERE/report.py" "$R" | tee "$R/report.txt"
log "raw JSON in $R (summary: $R/summary.json)"
