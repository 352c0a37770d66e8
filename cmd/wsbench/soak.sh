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
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
W=$(mktemp -d /tmp/wsdiag-soak.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
[[ $(id -u) -eq 0 ]] || { echo "soak.sh: run as root (live capture)" >&2; exit 2; }
command -v nginx >/dev/null || { echo "soak.sh: needs nginx (apt-get install nginx)" >&2; exit 2; }

(cd "$HERE" && CGO_ENABLED=0 go build -o "$W/wsdiag" ./cmd/wsdiag)
(cd "$HERE/testdata/gen" && go build -buildvcs=false -o "$W/" ./backend ./client)
mkdir -p "$W/nginx"
cat >"$W/nginx/nginx.conf" <<NGX
worker_processes 1;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $W/nginx/t1; proxy_temp_path $W/nginx/t2; fastcgi_temp_path $W/nginx/t3; uwsgi_temp_path $W/nginx/t4; scgi_temp_path $W/nginx/t5;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:18080;
    location /ws/ok { proxy_pass http://127.0.0.1:19001; proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade; proxy_set_header Connection \$connection_upgrade; }
    location /ws/broken { proxy_pass http://127.0.0.1:19001; }
  }
}
NGX
"$W/backend" -addr 127.0.0.1:19001 >"$W/backend.log" 2>&1 & PIDS+=($!)
nginx -c "$W/nginx/nginx.conf" -p "$W/nginx" -g 'daemon off;' & PIDS+=($!)
sleep 1
"$W/wsdiag" live -i lo --format json --progress never --duration "${DUR}s" 'port 18080 or port 19001' >"$W/verdicts.jsonl" 2>"$W/wsdiag.err" &
WS=$!; PIDS+=($WS)
sleep 1
N=$((DUR * RATE - 2 * RATE))
STAGGER=$((1000000 / RATE))
"$W/client" -url ws://127.0.0.1:18080/ws/ok,ws://127.0.0.1:18080/ws/broken -n "$N" -c 8 -stagger "${STAGGER}us" -msgs 1 -timeout 5s >/dev/null 2>&1 & CL=$!; PIDS+=($CL)
echo "soak: $DUR s, $RATE handshakes/s ($N attempts), work dir $W" >&2
printf '%6s %10s %8s\n' "t(s)" "RSS(KiB)" "verdicts" >"$W/rss.txt"
start=$(date +%s)
while kill -0 "$WS" 2>/dev/null; do
  rss=$(awk '/VmRSS/{print $2}' "/proc/$WS/status" 2>/dev/null || echo 0)
  printf '%6d %10s %8d\n' $(( $(date +%s) - start )) "$rss" "$(wc -l <"$W/verdicts.jsonl")" >>"$W/rss.txt"
  sleep 10
done
wait "$CL" 2>/dev/null || true
cat "$W/rss.txt"
echo "--- wsdiag stderr"; cat "$W/wsdiag.err"
echo "--- verdicts by code"
grep -o '"code":"[a-z_0-9]*"' "$W/verdicts.jsonl" | sort | uniq -c
echo "--- summary"; grep '"type":"summary"' "$W/verdicts.jsonl" | cut -c1-400
awk 'NR>2 && $2>0 {if(min==""||$2<min)min=$2; if($2>max)max=$2} END {printf "RSS after warm-up: min %d KiB, max %d KiB\n", min, max}' "$W/rss.txt"
