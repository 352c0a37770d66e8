#!/usr/bin/env bash
# Soak test of wsdiag live: nginx on 127.0.0.1 with a correct and a broken
# WebSocket location, the gorilla backend and client of testdata/gen making
# RATE handshakes per second for DURATION seconds, wsdiag live -i lo
# watching. Prints verdict counts, kernel drops, and wsdiag's RSS over time.
#
#   sudo cmd/wsbench/soak.sh [DURATION_S=600] [RATE=100]
#
# Uses only 127.0.0.1 (ports 18080, 19001); ends only what it started.
set -euo pipefail
DUR=${1:-600}
RATE=${2:-100}
. "$(dirname "${BASH_SOURCE[0]}")/rig.sh"
rig_init soak.sh
rig_build
rig_start 127.0.0.1:18080 127.0.0.1:19001
"$W/wsdiag" live -i lo --format json --progress never --duration "${DUR}s" 'port 18080 or port 19001' >"$W/verdicts.jsonl" 2>"$W/wsdiag.err" &
WS=$!; PIDS+=($WS)
sleep 1
N=$((DUR * RATE - 2 * RATE))
STAGGER=$((1000000 / RATE))
"$W/client" -url ws://127.0.0.1:18080/ws/ok,ws://127.0.0.1:18080/ws/broken -n "$N" -c 8 -stagger "${STAGGER}us" -msgs 1 -timeout 5s >/dev/null 2>&1 & CL=$!; PIDS+=($CL)
echo "soak: $DUR s, $RATE handshakes/s ($N attempts), work dir $W" >&2
rig_rss "$WS" 10
wait "$CL" 2>/dev/null || true
cat "$W/rss.txt"
echo "--- wsdiag stderr"; cat "$W/wsdiag.err"
echo "--- verdicts by code"
grep -o '"code":"[a-z_0-9]*"' "$W/verdicts.jsonl" | sort | uniq -c
echo "--- summary"; grep '"type":"summary"' "$W/verdicts.jsonl" | cut -c1-400
awk 'NR>2 && $2>0 {if(min==""||$2<min)min=$2; if($2>max)max=$2} END {printf "RSS after warm-up: min %d KiB, max %d KiB\n", min, max}' "$W/rss.txt"
