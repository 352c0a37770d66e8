#!/usr/bin/env bash
# wsdiag live under a slowloris-style flood: nginx on 127.0.0.1:8980 (a
# correct and a broken WebSocket location, the gorilla backend of
# testdata/gen on 9980), `wsbench slowloris` holding N connections that each
# sent half a request, while the testdata/gen client drives real attempts
# through the same nginx and `wsdiag live --max-memory BUDGET -i lo`
# watches. Prints wsdiag's RSS over time against the budget and whether
# every real attempt got its verdict (ok for /ws/ok, upgrade_header_dropped
# for /ws/broken).
#
#   sudo cmd/wsbench/livefloods.sh [FLOOD_CONNS=20000] [BUDGET=64M] [ATTEMPTS=400]
#
# Uses only 127.0.0.1 (ports 8980, 9980); ends only what it started.
set -euo pipefail
N=${1:-20000}
BUDGET=${2:-64M}
ATTEMPTS=${3:-400}
. "$(dirname "${BASH_SOURCE[0]}")/rig.sh"
rig_init livefloods.sh
rig_build
# The open-file limit may be low and fixed (a container): spread the flood
# over enough nginx workers and flooding processes.
NOFILE=$(ulimit -Hn); [[ $NOFILE == unlimited ]] && NOFILE=1048576
NOFILE=$(( NOFILE > 65536 ? 65536 : NOFILE ))
PER=$(( NOFILE * 3 / 4 ))
PROCS=$(( (N + PER - 1) / PER ))
rig_start "127.0.0.1:8980 reuseport backlog=4096" 127.0.0.1:9980 -workers $(( PROCS + 1 )) -nofile "$NOFILE" -conns $(( NOFILE - 100 )) \
  -level crit -http 'client_header_timeout 120s;'
"$W/wsdiag" live -i lo --max-memory "$BUDGET" --format json --progress never 'port 8980 or port 9980' >"$W/verdicts.jsonl" 2>"$W/wsdiag.err" &
WS=$!; PIDS+=($WS)
sleep 2
rig_rss "$WS" 1 & PIDS+=($!)
# The flood: N connections at 2000/s, held 30 s once all are open.
FLS=()
for ((i = 0; i < PROCS; i++)); do
  n=$(( N / PROCS + (i < N % PROCS ? 1 : 0) ))
  "$W/wsbench" slowloris -addr 127.0.0.1:8980 -n "$n" -rate $(( 2000 / PROCS )) -hold 30s >"$W/slowloris.$i.log" 2>&1 & FLS+=($!); PIDS+=($!)
done
# Real attempts meanwhile: half to the correct location, half to the broken one.
sleep 2
STAGGER=$(( (N / 2000 + 25) * 1000000 / ATTEMPTS ))
"$W/client" -url ws://127.0.0.1:8980/ws/ok,ws://127.0.0.1:8980/ws/broken -n "$ATTEMPTS" -c 4 -stagger "${STAGGER}us" -msgs 1 -timeout 5s >"$W/client.log" 2>&1 || true
for p in "${FLS[@]}"; do wait "$p" || true; done
sleep 3
kill -INT "$WS"; wait "$WS" || true
sleep 1
peak=$(awk 'NR>1 && $2>m {m=$2} END {print m+0}' "$W/rss.txt")
cat "$W"/slowloris.*.log
echo "--- wsdiag RSS (KiB) every second"; awk 'NR==1 || (NR-2)%5==0' "$W/rss.txt"
echo "--- wsdiag stderr"; cat "$W/wsdiag.err"
echo "--- verdicts by path and code"
grep '"type":"verdict"' "$W/verdicts.jsonl" | grep -o '"code":"[a-z_0-9]*"\|"path":"[^"]*"' | paste - - | sort | uniq -c
okn=$(grep '"type":"verdict"' "$W/verdicts.jsonl" | grep '"path":"/ws/ok"' | grep -c '"code":"ok"' || true)
brn=$(grep '"type":"verdict"' "$W/verdicts.jsonl" | grep '"path":"/ws/broken"' | grep -c '"code":"upgrade_header_dropped"' || true)
echo "--- summary"; grep '"type":"summary"' "$W/verdicts.jsonl" | cut -c1-600
lim=$(( $(echo "$BUDGET" | tr -dc 0-9) * 1024 ))
printf 'budget %s, peak RSS %.1f MiB: %s; real attempts %d, right verdicts %d (ok %d, upgrade_header_dropped %d)\n' \
  "$BUDGET" "$(echo "$peak/1024" | bc -l)" "$([[ $peak -le $lim ]] && echo within || echo OVER)" "$ATTEMPTS" $((okn + brn)) "$okn" "$brn"
