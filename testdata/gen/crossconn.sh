#!/usr/bin/env bash
# Captures of failures that show only across connections or over time
# (issue 12): a cut by something in front of nginx (haproxy's idle timeout,
# a relay's fixed lifetime), many tunnels closed at once by a reload or a
# restart, socket.io without sticky sessions, nginx out of connections,
# handshake headers too large, an Origin the backend no longer matches, an
# untrusted proxy, and Firefox's Connection list forwarded as is.
#
#   sudo testdata/gen/crossconn.sh            # all scenarios (about 1.5 min)
#   sudo testdata/gen/crossconn.sh NAME...    # only these (the manifest is always rewritten whole)
#   testdata/gen/crossconn.sh --list
#
# Uses only 127.0.0.1: proxies on 8200-8299, backends on 9200-9299 (each
# scenario its own pair). Ends only the processes it started, by PID.
# Writes NAME.pcap, NAME.nginx-error.log and MANIFEST-crossconn.tsv into
# testdata/captures.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$(mkdir -p "$HERE/../captures" && cd "$HERE/../captures" && pwd)

# name | expected_code | expected_hop | description   (the order is the run order)
SCENARIOS=(
  "front-idle-haproxy|front_idle_timeout|front|haproxy :8200 (timeout client/tunnel 3s) in front of nginx :8201 → backend :9200; 3 tunnels echo one message and go quiet; haproxy cuts them 3 s later (FIN on nginx's client leg, no close frame); only nginx's legs (8201, 9200) captured, as on a proxy host behind a load balancer"
  "front-lifetime-relay|lifetime_limit|front|relay (testdata/gen/relay, -lifetime 4s) :8202 in front of nginx :8203 → backend :9201; 3 busy tunnels (a message every 250 ms) cut at 4 s of age; only nginx's legs (8203, 9201) captured"
  "mass-close-reload|mass_close|session|nginx :8210 with worker_shutdown_timeout 1s, 6 busy tunnels to backend :9210, nginx -s reload after 2 s: the old worker closes all 6 one second later (event mass_close)"
  "mass-close-restart|mass_close|session|nginx :8211, 6 busy tunnels to backend :9211, nginx stopped (SIGTERM, fast shutdown) after 2 s and started again: all 6 closed at once by the proxy (event mass_close)"
  "mass-close-backend|mass_close|session|nginx :8212, 6 busy tunnels to backend :9212, the backend stopped (SIGTERM: the Go process exits, the kernel FINs its sockets) after 2 s: nginx passes the 6 closes on to its clients at once (event mass_close, closed by the backend)"
  "sticky-socketio|sticky_session_missing|proxy|socket.io 4.8 (node) servers A :9220 and B :9221 behind an nginx :8220 round-robin upstream (no ip_hash): a client's polling handshake answered by one, its later requests and its upgrade (sid in the query) sent to the other, which answers 400 {\"code\":1,\"message\":\"Session ID unknown\"}"
  "sticky-signalr|sticky_session_missing|proxy|SignalR-style hub (testdata/gen/backend /hub/negotiate and /hub) on two backends :9222 and :9223 behind an nginx :8221 round-robin upstream: each client's negotiate POST is answered by one, its upgrade GET /hub?id=<connectionToken> goes to the other, which answers 404 No Connection with that ID"
  "proxy-capacity|ok=7;proxy_at_capacity=5|-;proxy|nginx :8240 with worker_connections 16 in front of backend :9240: 12 tunnels opened together and held; nginx logs worker_connections are not enough and the attempts beyond the plateau fail"
  "headers-nginx-400|headers_too_large|proxy|nginx :8250 with large_client_header_buffers 2 1k, the client sends a 1500-byte Cookie: nginx answers 400 Request Header Or Cookie Too Large itself, no leg B"
  "headers-backend-431|headers_too_large|backend|nginx :8251 (correct config) passes a 6000-byte Cookie to a Go backend :9251 with MaxHeaderBytes 1024: 431 Request Header Fields Too Large relayed"
  "origin-host-port|origin_mismatch|proxy|nginx :8260 with proxy_set_header Host \$host (drops the port) in front of backend /strict :9260 (gorilla's origin check): Origin http://127.0.0.1:8260 against Host 127.0.0.1 → 403"
  "untrusted-proxy|untrusted_proxy|backend|nginx :8270 sets X-Forwarded-For; backend /trusted :9270 trusts no proxy (Home Assistant's http integration without trusted_proxies): 400 whose body says so"
  "firefox-connection|backend_rejected|backend|nginx :8280 with proxy_set_header Connection \$http_connection forwards Firefox's Connection: keep-alive, Upgrade as is; backend /exactconn :9280 wants exactly Upgrade → 400"
)

source "$HERE/lib.sh"

install_missing "nginx haproxy tcpdump ss perl" nginx-light haproxy tcpdump iproute2 perl
command -v go >/dev/null 2>&1 || die "go is not installed"
command -v npm >/dev/null 2>&1 || die "npm (node) is not installed: apt-get install -y npm"

WORK=$(mktemp -d /tmp/wsdiag-crossconn.XXXXXX)
chmod 755 "$WORK"
log "building backend, client and relay in $WORK/bin"
(cd "$HERE" && go build -buildvcs=false -o "$WORK/bin/" ./backend ./client ./relay)

CORRECT='proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade; proxy_set_header Host $host;'

# ---------------------------------------------------------------- helpers
# nginx_conf DIR LISTEN "EVENTS_EXTRA" "HTTP_EXTRA" "SERVER BODY"
nginx_conf() {
  local d=$1
  { nginx_preamble "$d"
    cat <<EOF
    $4
    server {
        listen 127.0.0.1:$2;
        server_name localhost;
        $5
    }
}
EOF
  } > "$d/nginx.conf"
  if [[ -n "$3" ]]; then sed -i "s/^events { .* }$/events { $3 }/" "$d/nginx.conf"; fi
  nginx -t -q -c "$d/nginx.conf" -p "$d" -e "$d/error.log" || die "nginx -t failed for $d"
  : > "$d/error.log"
}
start_nginx() { # DIR PORT → NGX_PID
  nginx -c "$1/nginx.conf" -p "$1" -e "$1/error.log" &
  NGX_PID=$!; STARTED_PIDS+=("$NGX_PID")
  wait_listen "$2" "$NGX_PID" nginx
}
start_backend() { # PORT ARGS... → BE_PID
  local port=$1; shift
  "$WORK/bin/backend" -addr "127.0.0.1:$port" "$@" 2>> "$D/backend.$port.log" &
  BE_PID=$!; STARTED_PIDS+=("$BE_PID")
  wait_listen "$port" "$BE_PID" backend
}
start_capture() { # PORTS...
  local f="tcp and (port $1" p
  shift
  for p in "$@"; do f+=" or port $p"; done
  f+=")"
  tcpdump -i lo -Z root -U -s 0 -w "$D/$NAME.pcap" "$f" 2> "$D/capture.err" &
  CAP_PID=$!; STARTED_PIDS+=("$CAP_PID")
  wait_file_has "$D/capture.err" 'listening on' "$CAP_PID" tcpdump
  sleep 1
}
run_client() { # ARGS... (in the foreground)
  "$WORK/bin/client" "$@" >> "$D/client.log" 2>&1 || die "[$NAME] client failed"
}
client_bg() { # ARGS... → CL_PID
  "$WORK/bin/client" "$@" >> "$D/client.log" 2>&1 &
  CL_PID=$!; STARTED_PIDS+=("$CL_PID")
}
wait_pid() { wait "$1" || true; forget_pid "$1"; }
finish() { # stop tcpdump, check drops, copy the capture and the error log
  sleep 2
  stop_pid "$CAP_PID" INT
  grep -qx '0 packets dropped by kernel' "$D/capture.err" || { cat "$D/capture.err" >&2; die "[$NAME] tcpdump dropped packets"; }
  cat "$D/client.log" >&2 2>/dev/null || true
  install -m 644 "$D/$NAME.pcap" "$OUT/$NAME.pcap"
  if [[ -f "$D/error.log" ]]; then
    grep -E '\[(warn|error|crit|alert|emerg)\]' "$D/error.log" > "$OUT/$NAME.nginx-error.log" || true
    chmod 644 "$OUT/$NAME.nginx-error.log"
  fi
  log "[$NAME] wrote $OUT/$NAME.pcap ($(stat -c %s "$OUT/$NAME.pcap") bytes)"
  tcpdump -nn -ttttt -r "$OUT/$NAME.pcap" 2>/dev/null | perl -ne '
    print "   $1 $2 > $3 [$4]\n" if /^\s*(\S+) IP [\d.]+\.(\d+) > [\d.]+\.(\d+): Flags \[([^\]]*[FR][^\]]*)\]/' | head -60 >&2
}
haproxy_cfg() { # FILE LISTEN UPSTREAM
  cat > "$1" <<EOF
global
  maxconn 100
defaults
  mode http
  timeout connect 2s
  timeout client 3s
  timeout server 30s
  timeout tunnel 3s
frontend fe
  bind 127.0.0.1:$2
  default_backend be
backend be
  server s1 127.0.0.1:$3
EOF
}

# ---------------------------------------------------------------- scenarios
scn_front-idle-haproxy() {
  start_backend 9200
  nginx_conf "$D" 8201 "" "" "location /ws { $CORRECT proxy_read_timeout 60s; proxy_pass http://127.0.0.1:9200; }"
  start_nginx "$D" 8201
  haproxy_cfg "$D/haproxy.cfg" 8200 8201
  haproxy -db -f "$D/haproxy.cfg" 2> "$D/haproxy.log" &
  STARTED_PIDS+=("$!"); wait_listen 8200 "$!" haproxy
  start_capture 8201 9200
  run_client -url ws://127.0.0.1:8200/ws -n 3 -c 3 -stagger 300ms -msgs 1 -hold 6s -hold-read
  finish
}
scn_front-lifetime-relay() {
  start_backend 9201
  nginx_conf "$D" 8203 "" "" "location /ws { $CORRECT proxy_pass http://127.0.0.1:9201; }"
  start_nginx "$D" 8203
  "$WORK/bin/relay" -listen 127.0.0.1:8202 -upstream 127.0.0.1:8203 -lifetime 4s 2> "$D/relay.log" &
  STARTED_PIDS+=("$!"); wait_listen 8202 "$!" relay
  start_capture 8203 9201
  run_client -url ws://127.0.0.1:8202/ws -n 3 -c 3 -stagger 300ms -msgs 30 -interval 250ms
  cat "$D/relay.log" >&2
  finish
}
scn_mass-close-reload() {
  start_backend 9210
  nginx_conf "$D" 8210 "" "" "location /ws { $CORRECT proxy_pass http://127.0.0.1:9210; }"
  sed -i 's/^worker_processes 1;/worker_processes 1;\nworker_shutdown_timeout 1s;/' "$D/nginx.conf"
  start_nginx "$D" 8210
  start_capture 8210 9210
  client_bg -url ws://127.0.0.1:8210/ws -n 6 -c 6 -stagger 50ms -msgs 40 -interval 200ms
  sleep 2
  log "[$NAME] nginx -s reload"
  nginx -c "$D/nginx.conf" -p "$D" -e "$D/error.log" -s reload
  wait_pid "$CL_PID"
  finish
}
scn_mass-close-restart() {
  start_backend 9211
  nginx_conf "$D" 8211 "" "" "location /ws { $CORRECT proxy_pass http://127.0.0.1:9211; }"
  start_nginx "$D" 8211
  start_capture 8211 9211
  client_bg -url ws://127.0.0.1:8211/ws -n 6 -c 6 -stagger 50ms -msgs 40 -interval 200ms
  sleep 2
  log "[$NAME] restart: SIGTERM to nginx $NGX_PID, then start again"
  stop_pid "$NGX_PID" TERM
  start_nginx "$D" 8211
  wait_pid "$CL_PID"
  finish
}
scn_mass-close-backend() {
  start_backend 9212
  nginx_conf "$D" 8212 "" "" "location /ws { $CORRECT proxy_pass http://127.0.0.1:9212; }"
  start_nginx "$D" 8212
  start_capture 8212 9212
  client_bg -url ws://127.0.0.1:8212/ws -n 6 -c 6 -stagger 50ms -msgs 40 -interval 200ms
  sleep 2
  log "[$NAME] backend stopped: SIGTERM to $BE_PID"
  stop_pid "$BE_PID" TERM
  wait_pid "$CL_PID"
  finish
}
scn_sticky-socketio() {
  if [[ ! -d "$WORK/sio/node_modules" ]]; then
    mkdir -p "$WORK/sio"
    cp "$HERE/sio/package.json" "$HERE/sio/package-lock.json" "$HERE/sio/server.js" "$HERE/sio/client.js" "$WORK/sio/"
    (cd "$WORK/sio" && npm ci --no-audit --no-fund --loglevel=error) >&2
  fi
  local p
  for p in 9220 9221; do
    node "$WORK/sio/server.js" "backend-$p" "$p" >> "$D/sio-server.log" 2>&1 &
    STARTED_PIDS+=("$!"); wait_listen "$p" "$!" "socket.io server $p"
  done
  nginx_conf "$D" 8220 "" "upstream sio { server 127.0.0.1:9220; server 127.0.0.1:9221; }" \
    "location /socket.io/ { $CORRECT proxy_pass http://sio; }"
  start_nginx "$D" 8220
  start_capture 8220 9220 9221
  node "$WORK/sio/client.js" http://127.0.0.1:8220 3 4000 >> "$D/client.log" 2>&1 || die "[$NAME] socket.io client failed"
  cat "$D/sio-server.log" >&2
  finish
}
scn_sticky-signalr() {
  start_backend 9222
  start_backend 9223
  nginx_conf "$D" 8221 "" "upstream hub { server 127.0.0.1:9222; server 127.0.0.1:9223; }" \
    "location /hub { $CORRECT proxy_pass http://hub; }"
  start_nginx "$D" 8221
  start_capture 8221 9222 9223
  run_client -url ws://127.0.0.1:8221/hub -n 3 -signalr
  finish
}
scn_proxy-capacity() {
  start_backend 9240
  nginx_conf "$D" 8240 "worker_connections 16;" "" "location /ws { $CORRECT proxy_pass http://127.0.0.1:9240; }"
  start_nginx "$D" 8240
  start_capture 8240 9240
  run_client -url ws://127.0.0.1:8240/ws -n 12 -c 12 -stagger 20ms -msgs 1 -hold 3s -timeout 2s
  finish
}
scn_headers-nginx-400() {
  start_backend 9250
  nginx_conf "$D" 8250 "" "" "client_header_buffer_size 1k; large_client_header_buffers 2 1k; location /ws { $CORRECT proxy_pass http://127.0.0.1:9250; }"
  start_nginx "$D" 8250
  start_capture 8250 9250
  run_client -url ws://127.0.0.1:8250/ws -n 2 -cookie-size 1500
  finish
}
scn_headers-backend-431() {
  start_backend 9251 -max-header-bytes 1024
  nginx_conf "$D" 8251 "" "" "location /ws { $CORRECT proxy_pass http://127.0.0.1:9251; }"
  start_nginx "$D" 8251
  start_capture 8251 9251
  run_client -url ws://127.0.0.1:8251/ws -n 2 -cookie-size 6000
  finish
}
scn_origin-host-port() {
  start_backend 9260
  nginx_conf "$D" 8260 "" "" "location /strict { $CORRECT proxy_pass http://127.0.0.1:9260; }"
  start_nginx "$D" 8260
  start_capture 8260 9260
  run_client -url ws://127.0.0.1:8260/strict -n 2
  finish
}
scn_untrusted-proxy() {
  start_backend 9270 -trusted-proxies ""
  nginx_conf "$D" 8270 "" "" "location /trusted { $CORRECT proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; proxy_pass http://127.0.0.1:9270; }"
  start_nginx "$D" 8270
  start_capture 8270 9270
  run_client -url ws://127.0.0.1:8270/trusted -n 2
  finish
}
scn_firefox-connection() {
  start_backend 9280
  nginx_conf "$D" 8280 "" "" "location /exactconn { proxy_http_version 1.1; proxy_set_header Upgrade \$http_upgrade; proxy_set_header Connection \$http_connection; proxy_set_header Host \$host; proxy_pass http://127.0.0.1:9280; }"
  start_nginx "$D" 8280
  start_capture 8280 9280
  run_client -url ws://127.0.0.1:8280/exactconn -n 2 -firefox
  finish
}

run_scenario() {
  NAME=$1; D="$WORK/$NAME"
  mkdir -p "$D"; chmod 755 "$D"
  log "[$NAME]"
  local before=" ${STARTED_PIDS[*]} " p i
  "scn_$NAME"
  # stop what this scenario started (nginx, backends, relay, haproxy), newest first
  for ((i=${#STARTED_PIDS[@]}-1; i>=0; i--)); do
    p=${STARTED_PIDS[$i]}
    [[ "$before" == *" $p "* ]] && continue
    stop_pid "$p" TERM
  done
}

for n in "${SELECTED[@]}"; do run_scenario "$n"; done
write_manifest "$OUT/MANIFEST-crossconn.tsv"
log "done: ${#SELECTED[@]} scenario(s); nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), $(haproxy -v | head -1 | cut -d' ' -f1-3)"
