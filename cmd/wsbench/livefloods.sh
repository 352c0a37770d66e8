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
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
W=$(mktemp -d /tmp/wsdiag-livefloods.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
[[ $(id -u) -eq 0 ]] || { echo "livefloods.sh: run as root (live capture)" >&2; exit 2; }
command -v nginx >/dev/null || { echo "livefloods.sh: needs nginx (apt-get install nginx)" >&2; exit 2; }

(cd "$HERE" && CGO_ENABLED=0 go build -o "$W/wsdiag" ./cmd/wsdiag && go build -o "$W/wsbench" ./cmd/wsbench)
(cd "$HERE/testdata/gen" && go build -buildvcs=false -o "$W/" ./backend ./client)
mkdir -p "$W/nginx"
# The open-file limit may be low and fixed (a container): spread the flood
# over enough nginx workers and flooding processes.
NOFILE=$(ulimit -Hn); [[ $NOFILE == unlimited ]] && NOFILE=1048576
NOFILE=$(( NOFILE > 65536 ? 65536 : NOFILE ))
PER=$(( NOFILE * 3 / 4 ))
PROCS=$(( (N + PER - 1) / PER ))
WORKERS=$(( PROCS + 1 ))
cat >"$W/nginx/nginx.conf" <<NGX
worker_processes $WORKERS;
worker_rlimit_nofile $NOFILE;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log crit;
events { worker_connections $((NOFILE - 100)); }
http {
  access_log off;
  client_header_timeout 120s;
  client_body_temp_path $W/nginx/t1; proxy_temp_path $W/nginx/t2; fastcgi_temp_path $W/nginx/t3; uwsgi_temp_path $W/nginx/t4; scgi_temp_path $W/nginx/t5;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:8980 reuseport backlog=4096;
    location /ws/ok { proxy_pass http://127.0.0.1:9980; proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade; proxy_set_header Connection \$connection_upgrade; }
    location /ws/broken { proxy_pass http://127.0.0.1:9980; }
  }
}
NGX
"$W/backend" -addr 127.0.0.1:9980 >"$W/backend.log" 2>&1 & PIDS+=($!)
nginx -c "$W/nginx/nginx.conf" -p "$W/nginx" -g 'daemon off;' & PIDS+=($!)
sleep 1
"$W/wsdiag" live -i lo --max-memory "$BUDGET" --format json --progress never 'port 8980 or port 9980' >"$W/verdicts.jsonl" 2>"$W/wsdiag.err" &
WS=$!; PIDS+=($WS)
sleep 2
printf '%6s %10s %8s\n' "t(s)" "RSS(KiB)" "verdicts" >"$W/rss.txt"
(
  start=$(date +%s)
  while kill -0 "$WS" 2>/dev/null; do
    rss=$(awk '/VmRSS/{print $2}' "/proc/$WS/status" 2>/dev/null || echo 0)
    printf '%6d %10s %8d\n' $(( $(date +%s) - start )) "$rss" "$(grep -c '"type":"verdict"' "$W/verdicts.jsonl" || true)" >>"$W/rss.txt"
    sleep 1
  done
) & PIDS+=($!)
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
