#!/usr/bin/env bash
# Records the "real" benchmark workload: Debian's nginx at a high connection
# rate, thousands of short WebSocket sessions through a correct (/ws/ok) and
# a broken (/ws/broken, no upgrade directives) location, plain keep-alive
# GETs mixed in, both legs, tcpdump on lo. The file goes to /tmp (it is
# large: not committed); wsbench run times the tools on it.
#
#   sudo [NGINX_PORT=8800] [BACKEND_PORT=9800] cmd/wsbench/realwork.sh [OUT=/tmp/realwork.pcap] [ATTEMPTS=4600] [MSGS=40]
#
# Uses only 127.0.0.1: nginx on NGINX_PORT, the backend on BACKEND_PORT.
# Ends only the processes it started, by PID; fails when tcpdump reports
# kernel drops.
set -euo pipefail
OUTFILE=${1:-/tmp/realwork.pcap}
ATTEMPTS=${2:-4600}
MSGS=${3:-40}
SCENARIOS=("realwork|ok;upgrade_header_dropped|-;proxy|benchmark workload")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../testdata/gen" && pwd)
source "$HERE/lib.sh" realwork
install_missing "nginx tcpdump ss" nginx-light tcpdump iproute2
command -v go >/dev/null 2>&1 || die "go is not installed"
NGINX_PORT=${NGINX_PORT:-8800} BACKEND_PORT=${BACKEND_PORT:-9800}
NGINX=127.0.0.1:$NGINX_PORT BACKEND=127.0.0.1:$BACKEND_PORT
for p in "$NGINX_PORT" "$BACKEND_PORT"; do [[ -z "$(ss -ltnH "sport = :$p")" ]] || die "port $p is already in use"; done

WORK=$(mktemp -d /tmp/wsdiag-realwork.XXXXXX)
chmod 755 "$WORK"
(cd "$HERE" && go build -buildvcs=false -o "$WORK/bin/" ./backend ./client)
UPGRADE='proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade; proxy_set_header Host $host;'
{
  nginx_preamble "$WORK/nginx" | sed 's/^error_log .*/error_log '"${WORK//\//\\/}"'\/nginx\/error.log warn;/; s/^    access_log .*/    access_log off;/; s/worker_connections 512/worker_connections 4096/'
  cat <<NGX
    server {
        listen $NGINX;
        location /ws/ok { $UPGRADE proxy_pass http://$BACKEND; }
        location /ws/broken { proxy_pass http://$BACKEND; }
        location = /health { proxy_pass http://$BACKEND; }
    }
}
NGX
} > "$WORK/nginx.conf"

"$WORK/bin/backend" -addr "$BACKEND" >"$WORK/backend.log" 2>&1 & STARTED_PIDS+=($!)
wait_listen "$BACKEND_PORT" $! backend
nginx -c "$WORK/nginx.conf" -p "$WORK/nginx" >"$WORK/nginx.out" 2>&1 & STARTED_PIDS+=($!)
wait_listen "$NGINX_PORT" $! nginx

tcpdump -i lo -Z root -s 0 -B 65536 -w "$OUTFILE" "tcp and (port $NGINX_PORT or port $BACKEND_PORT)" 2>"$WORK/capture.err" & CAP=$!; STARTED_PIDS+=($CAP)
wait_file_has "$WORK/capture.err" 'listening on' "$CAP" tcpdump
log "recording $ATTEMPTS attempts ($MSGS messages each when upgraded) + keep-alive GETs into $OUTFILE"
"$WORK/bin/client" -url "ws://$NGINX/ws/ok,ws://$NGINX/ws/broken" -n "$ATTEMPTS" -c 32 -msgs "$MSGS" -timeout 5s \
  -plain "http://$NGINX/health" -plain-n $((ATTEMPTS / 2)) -plain-gap 1ms >"$WORK/client.log" 2>&1
sleep 2
stop_pid "$CAP" INT
cat "$WORK/capture.err" >&2
grep -qx '0 packets dropped by kernel' "$WORK/capture.err" || die "tcpdump dropped packets (or did not say): see above"
tail -1 "$WORK/client.log" >&2
log "wrote $OUTFILE ($(stat -c %s "$OUTFILE") bytes)"
