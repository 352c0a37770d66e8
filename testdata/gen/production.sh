#!/usr/bin/env bash
# Regenerates the "production" captures in testdata/captures/: what a proxy
# host really records, beyond the lab's full two-leg captures (issue 11):
# packets cut by a snap length, a proxy answering on its own, a backend on a
# unix socket (no upstream leg on the wire), and captures started while
# WebSocket sessions are already open (midsession-*). See README.md beside
# this file ("Production captures").
#
#   sudo testdata/gen/production.sh            # all scenarios (about 2 min)
#   sudo testdata/gen/production.sh NAME...    # only these (the manifest is always rewritten whole)
#   testdata/gen/production.sh --list          # scenario names
#
# Needs root (apt-get, tcpdump on lo). Uses only 127.0.0.1: nginx on 8101,
# Caddy on 8102, haproxy on 8103, the backend on 9101 or on a unix socket.
# Ends only the processes it started, by PID (a trap ends them on any exit).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$(mkdir -p "$HERE/../captures" && cd "$HERE/../captures" && pwd)

NGINX_PORT=8101
CADDY_PORT=8102
HAPROXY_PORT=8103
BACKEND_PORT=9101
BACKEND="127.0.0.1:$BACKEND_PORT"
BPF="tcp and (portrange 8100-8199 or portrange 9100-9199)"
APP=app.example   # the name-based virtual host that does reach the backend

# name | expected_code | expected_hop | description   (the order is the run order)
# A code list "a=N;b=M" with hops "x;y" is a file with several kinds of
# attempt; cannot_tell = wsdiag should say it cannot tell, with a warning.
SCENARIOS=(
  "snap96-nginx|ok=2;cannot_tell=2|-;-|nginx /ws/ok correct, /ws/broken proxy_pass only (upstream HTTP/1.0, no Upgrade, backend 400), alternating; tcpdump -s 96: 30 payload bytes per packet, request and status lines only, no header"
  "snap200-nginx|ok=2;upgrade_header_dropped=2|-;proxy|as snap96-nginx with tcpdump -s 200 (134 payload bytes): request lines, Connection: Upgrade on leg A, the upstream request without Upgrade and both status lines are there; the rest of each header block is cut"
  "snap128-haproxy|ok=2;cannot_tell=2|-;-|haproxy /ws/ok correct, /ws/broken with http-request del-header Upgrade (backend 400); tcpdump -s 128: 62 payload bytes, request line, Host and the start of User-Agent only, so the broken attempts cannot be judged; the 101 status lines are whole"
  "snap200-tls|ok=1;cannot_tell=1|-;-|nginx TLS on 127.0.0.1:8143 (TLS 1.3, key log in snap200-tls.keylog), /ws/ok correct and /ws/broken proxy_pass only, one attempt each; tcpdump -s 200: the client leg's TLS records are cut (they cannot be decrypted even with the keys), the plaintext upstream leg keeps 134 bytes a packet as in snap200-nginx"
  "caddy-no-site|ok=2;proxy_rejected=2|-;proxy|Caddy site http://$APP:$CADDY_PORT reverse_proxy to the backend; attempts with Host $APP go upstream (101), attempts with Host 127.0.0.1:$CADDY_PORT match no site: Caddy answers 200 with an empty body itself, no upstream leg"
  "nginx-default-server|ok=2;proxy_rejected=4|-;proxy|nginx server_name $APP proxies /ws correctly and has location /ws/closed { return 403; }; the default_server (Host 127.0.0.1:$NGINX_PORT) has only a root: its own 404 page; 2 attempts each of 101, 403, 404"
  "haproxy-no-backend|ok=2;proxy_rejected=2|-;proxy|haproxy use_backend only for Host $APP, no default_backend: attempts with another Host get haproxy's own 503 (No server is available), the others go upstream (101)"
  "unix-nginx-broken|upgrade_header_dropped|proxy|nginx proxy_pass http://unix:…/app.sock with no upgrade directives; the backend (gorilla, -verbose-errors) answers 400 'upgrade' token not found in 'Connection' header, relayed; no TCP upstream leg"
  "unix-nginx-correct|ok|-|nginx proxy_pass http://unix:…/app.sock with the correct directives: 101, 2 echoed messages, close 1000; no TCP upstream leg"
  "unix-nginx-node-ws|ok=1;upgrade_header_dropped=2|-;proxy|nginx to a Node.js ws server (npm ws 8) on a unix socket: /ws/broken proxy_pass only (ws's own HTTP server answers 426 Upgrade Required, relayed), /ws/ok correct (101); no TCP upstream leg"
  "unix-nginx-python-websockets|ok=1;upgrade_header_dropped=2|-;proxy|nginx to a Python websockets server (Debian python3-websockets 10.4) on a unix socket: /ws/broken proxy_pass only (websockets refuses nginx's HTTP/1.0 request line: 400 \"Failed to open a WebSocket connection: did not receive a valid HTTP request.\", relayed), /ws/ok correct (101); no TCP upstream leg"
  "unix-nginx-no-socket|upstream_connect_failed|connect|nginx proxy_pass http://unix:…/app.sock where no backend runs (the socket file does not exist): nginx's own 502 page at once, error log connect() to unix:… failed (2: No such file or directory); no TCP upstream leg"
  "unix-haproxy|ok=2;upgrade_header_dropped=2|-;proxy|haproxy server on a unix socket: /ws works, /ws/broken has http-request del-header Upgrade (backend 400 with gorilla's reason); no TCP upstream leg"
  "midsession-nginx-timeout|idle_timeout=3;ok=1|session;-|3 sessions open through nginx (proxy_read_timeout 5s) before tcpdump starts; 2 messages each inside the capture, then silence: nginx FINs both legs ~5 s after the last frame, no close frame; one complete attempt inside the capture"
  "midsession-haproxy-tunnel|idle_timeout=3;ok=1|session;-|as midsession-nginx-timeout through haproxy with timeout tunnel 5s: haproxy FINs the client leg and RESETs the upstream leg 5 s after the last frame, no close frame"
  "midsession-nginx-normal|ok=3|-|3 sessions open through nginx before tcpdump starts; they exchange messages and close normally (close 1000 both ways)"
)

source "$HERE/lib.sh"

install_missing "nginx caddy haproxy tcpdump ss node npm openssl" nginx-light caddy haproxy tcpdump iproute2 nodejs npm openssl
/usr/bin/python3 -c 'import websockets' 2>/dev/null || install_missing "no-such-command-so-install" python3-websockets
command -v go >/dev/null 2>&1 || die "go is not installed"
for p in "$NGINX_PORT" "$CADDY_PORT" "$HAPROXY_PORT" "$BACKEND_PORT"; do
  if [[ -n "$(ss -ltnH "sport = :$p")" ]]; then die "port $p is already in use"; fi
done

WORK=$(mktemp -d /tmp/wsdiag-production.XXXXXX)
chmod 755 "$WORK"   # nginx workers (user nobody) reach their temp dirs and the socket
BIN=$WORK/bin
log "building backend and client in $BIN"
(cd "$HERE" && go build -buildvcs=false -o "$BIN/" ./backend ./client ./tlsclient)
SOCK=$WORK/run/app.sock
mkdir -p "$WORK/run"; chmod 755 "$WORK/run"
for n in "${SELECTED[@]}"; do
  if [[ $n == unix-nginx-node-ws ]]; then   # npm's ws beside a copy of the server
    mkdir -p "$WORK/node"; cp "$HERE/backend-node/server.js" "$WORK/node/"
    log "npm install ws@8 in $WORK/node"
    (cd "$WORK/node" && npm install --silent --no-audit --no-fund ws@8 >&2) || die "npm install ws failed"
  fi
done

CORRECT='proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade; proxy_set_header Host $host;'

# ---------------------------------------------------------------- programs
D=""            # this scenario's directory
CAP_PID=""
PROXY_PID=""
BACKEND_PID=""
BG_CLIENTS=()

start_backend() { # tcp | unix
  if [[ $1 == unix ]]; then
    "$BIN/backend" -unix "$SOCK" -verbose-errors 2> "$D/backend.log" &
    BACKEND_PID=$!; STARTED_PIDS+=("$BACKEND_PID")
    wait_file_has "$D/backend.log" 'listening on unix' "$BACKEND_PID" backend
  else
    "$BIN/backend" -addr "$BACKEND" -verbose-errors 2> "$D/backend.log" &
    BACKEND_PID=$!; STARTED_PIDS+=("$BACKEND_PID")
    wait_listen "$BACKEND_PORT" "$BACKEND_PID" backend
  fi
}

start_backend_other() { # node | python: another WebSocket library on the unix socket
  if [[ $1 == node ]]; then
    node "$WORK/node/server.js" "$SOCK" 2> "$D/backend.log" &
  else
    /usr/bin/python3 "$HERE/backend-python/server.py" "$SOCK" 2> "$D/backend.log" &
  fi
  BACKEND_PID=$!; STARTED_PIDS+=("$BACKEND_PID")
  wait_file_has "$D/backend.log" 'listening on unix' "$BACKEND_PID" "$1 backend"
}

start_nginx() { # SERVER-BLOCKS
  { nginx_preamble "$D"; printf '%s\n}\n' "$1"; } > "$D/nginx.conf"
  nginx -t -q -c "$D/nginx.conf" -p "$D" -e "$D/error.log" || die "nginx -t failed"
  nginx -c "$D/nginx.conf" -p "$D" -e "$D/error.log" &
  PROXY_PID=$!; STARTED_PIDS+=("$PROXY_PID")
  wait_listen "$NGINX_PORT" "$PROXY_PID" nginx
}

start_haproxy() { # FRONTEND-AND-BACKEND-LINES (timeouts: $HA_TUNNEL)
  cat > "$D/haproxy.cfg" <<EOF
# generated by testdata/gen/$SCRIPT
global
  maxconn 100
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  timeout tunnel ${HA_TUNNEL:-30s}
$1
EOF
  haproxy -c -q -f "$D/haproxy.cfg" || die "haproxy -c failed"
  haproxy -db -f "$D/haproxy.cfg" 2> "$D/haproxy.log" &
  PROXY_PID=$!; STARTED_PIDS+=("$PROXY_PID")
  wait_listen "$HAPROXY_PORT" "$PROXY_PID" haproxy
}

start_caddy() { # CADDYFILE-SITES
  printf '{\n  admin off\n  auto_https off\n  http_port %s\n}\n%s\n' "$CADDY_PORT" "$1" > "$D/Caddyfile"
  XDG_DATA_HOME=$D XDG_CONFIG_HOME=$D HOME=$D caddy run --config "$D/Caddyfile" --adapter caddyfile 2> "$D/caddy.log" &
  PROXY_PID=$!; STARTED_PIDS+=("$PROXY_PID")
  wait_listen "$CADDY_PORT" "$PROXY_PID" caddy
}

capture_start() { # SNAPLEN
  tcpdump -i lo -Z root -U -s "$1" -w "$D/cap.pcap" "$BPF" 2> "$D/capture.err" &
  CAP_PID=$!; STARTED_PIDS+=("$CAP_PID")
  wait_file_has "$D/capture.err" 'listening on' "$CAP_PID" tcpdump
  sleep 1
}

capture_stop() {
  sleep 2   # tcpdump hands packets over in blocks
  stop_pid "$CAP_PID" INT
  cat "$D/capture.err" >&2
  grep -qx '0 packets dropped by kernel' "$D/capture.err" || die "tcpdump dropped packets (or did not say)"
}

client() { # ARGS...: one client run in the foreground
  log "  client $*"
  "$BIN/client" "$@" >> "$D/client.log" 2>&1 || die "client failed"
}

client_bg() { # ARGS...: one client run in the background (see wait_clients)
  log "  client (background) $*"
  "$BIN/client" "$@" >> "$D/client.log" 2>&1 &
  BG_CLIENTS+=("$!"); STARTED_PIDS+=("$!")
}

wait_clients() {
  local p
  for p in "${BG_CLIENTS[@]}"; do wait "$p" || die "client failed"; forget_pid "$p"; done
  BG_CLIENTS=()
}

# ---------------------------------------------------------------- scenarios
NGX="127.0.0.1:$NGINX_PORT"
HAP="127.0.0.1:$HAPROXY_PORT"
CAD="127.0.0.1:$CADDY_PORT"

nginx_ok_broken() { # the nginx of the snap captures: /ws/ok correct, /ws/broken defaults
  start_backend tcp
  start_nginx "server { listen $NGX; server_name localhost;
    location /ws/ok { $CORRECT proxy_pass http://$BACKEND; }
    location /ws/broken { proxy_pass http://$BACKEND; } }"
}
scn_snap96-nginx() {
  nginx_ok_broken
  capture_start 96
  client -url "ws://$NGX/ws/ok,ws://$NGX/ws/broken" -n 4 -msgs 1
  capture_stop
}
scn_snap200-nginx() {
  nginx_ok_broken
  capture_start 200
  client -url "ws://$NGX/ws/ok,ws://$NGX/ws/broken" -n 4 -msgs 1
  capture_stop
}

haproxy_ok_broken() { # SERVER-ADDRESS: /ws/broken loses its Upgrade header
  start_haproxy "frontend fe
  bind $HAP
  http-request del-header Upgrade if { path_beg /ws/broken }
  default_backend be
backend be
  server s1 $1"
}
scn_snap128-haproxy() {
  start_backend tcp
  haproxy_ok_broken "$BACKEND"
  capture_start 128
  client -url "ws://$HAP/ws/ok,ws://$HAP/ws/broken" -n 4 -msgs 1
  capture_stop
}

scn_snap200-tls() {
  local tls=127.0.0.1:8143
  openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$D/key.pem" -out "$D/cert.pem" 2>/dev/null || die "openssl req failed"
  chmod 644 "$D/key.pem" "$D/cert.pem"
  start_backend tcp
  { nginx_preamble "$D"; cat <<EOF
    server { listen $tls ssl; server_name localhost;
      ssl_certificate $D/cert.pem; ssl_certificate_key $D/key.pem; ssl_protocols TLSv1.3;
      location /ws/ok { $CORRECT proxy_pass http://$BACKEND; }
      location /ws/broken { proxy_pass http://$BACKEND; } }
}
EOF
  } > "$D/nginx.conf"
  nginx -t -q -c "$D/nginx.conf" -p "$D" -e "$D/error.log" || die "nginx -t failed"
  nginx -c "$D/nginx.conf" -p "$D" -e "$D/error.log" &
  PROXY_PID=$!; STARTED_PIDS+=("$PROXY_PID")
  wait_listen 8143 "$PROXY_PID" nginx
  : > "$D/keylog"
  capture_start 200
  local u
  for u in ok broken; do
    log "  tlsclient wss://$tls/ws/$u"
    "$BIN/tlsclient" -url "wss://$tls/ws/$u" -servername localhost -cacert "$D/cert.pem" -min 1.3 -n 1 -msgs 1 -keylog "$D/keylog" >> "$D/client.log" 2>&1 || die "tlsclient failed"
  done
  capture_stop
  install -m 644 "$D/keylog" "$OUT/snap200-tls.keylog"
}

scn_caddy-no-site() {
  start_backend tcp
  start_caddy "http://$APP:$CADDY_PORT {
  bind 127.0.0.1
  reverse_proxy $BACKEND
}"
  capture_start 0
  local i
  for i in 1 2; do
    client -url "ws://$CAD/ws" -host "$APP:$CADDY_PORT" -n 1 -msgs 1
    client -url "ws://$CAD/ws" -n 1
  done
  capture_stop
}

scn_nginx-default-server() {
  start_backend tcp
  mkdir -p "$D/www"
  start_nginx "server { listen $NGX default_server; server_name _; root $D/www; }
  server { listen $NGX; server_name $APP;
    location /ws { $CORRECT proxy_pass http://$BACKEND; }
    location /ws/closed { return 403; } }"
  capture_start 0
  local i
  for i in 1 2; do
    client -url "ws://$NGX/ws" -host "$APP:$NGINX_PORT" -n 1 -msgs 1
    client -url "ws://$NGX/ws" -n 1
    client -url "ws://$NGX/ws/closed" -host "$APP:$NGINX_PORT" -n 1
  done
  capture_stop
}

scn_haproxy-no-backend() {
  start_backend tcp
  start_haproxy "frontend fe
  bind $HAP
  use_backend app if { req.hdr(host),field(1,:) -i $APP }
backend app
  server s1 $BACKEND"
  capture_start 0
  local i
  for i in 1 2; do
    client -url "ws://$HAP/ws" -host "$APP:$HAPROXY_PORT" -n 1 -msgs 1
    client -url "ws://$HAP/ws" -n 1
  done
  capture_stop
}

scn_unix-nginx-broken() {
  start_backend unix
  start_nginx "server { listen $NGX; server_name localhost;
    location /ws { proxy_pass http://unix:$SOCK:; } }"
  capture_start 0
  client -url "ws://$NGX/ws" -n 3
  capture_stop
}
scn_unix-nginx-correct() {
  start_backend unix
  start_nginx "server { listen $NGX; server_name localhost;
    location /ws { $CORRECT proxy_pass http://unix:$SOCK:; } }"
  capture_start 0
  client -url "ws://$NGX/ws" -n 1 -msgs 2
  capture_stop
}
unix_other() { # node | python
  start_backend_other "$1"
  start_nginx "server { listen $NGX; server_name localhost;
    location /ws/ok { $CORRECT proxy_pass http://unix:$SOCK:; }
    location /ws/broken { proxy_pass http://unix:$SOCK:; } }"
  capture_start 0
  client -url "ws://$NGX/ws/broken" -n 2
  client -url "ws://$NGX/ws/ok" -n 1 -msgs 1
  capture_stop
}
scn_unix-nginx-node-ws() { unix_other node; }
scn_unix-nginx-python-websockets() { unix_other python; }
scn_unix-nginx-no-socket() {
  start_nginx "server { listen $NGX; server_name localhost;
    location /ws { $CORRECT proxy_pass http://unix:$SOCK:; } }"
  capture_start 0
  client -url "ws://$NGX/ws" -n 2
  capture_stop
  grep -E '\[(warn|error|crit)\]' "$D/error.log" > "$OUT/unix-nginx-no-socket.nginx-error.log" || true
  chmod 644 "$OUT/unix-nginx-no-socket.nginx-error.log"
}
scn_unix-haproxy() {
  start_backend unix
  haproxy_ok_broken "$SOCK"
  capture_start 0
  client -url "ws://$HAP/ws/ok,ws://$HAP/ws/broken" -n 4 -msgs 1
  capture_stop
}

# Midsession: the sessions open (handshake, first message) before tcpdump
# starts; 4 messages 1 s apart, so two or three fall inside the capture.
midsession() { # URL [EXTRA-URL]: the background sessions, then a whole attempt inside the capture
  client_bg -url "$1" -n 3 -c 3 -msgs 4 -interval 1s -hold 8s -hold-read
  sleep 1.3
  capture_start 0
  client -url "$1" -n 1 -msgs 1
  wait_clients
  capture_stop
}
scn_midsession-nginx-timeout() {
  start_backend tcp
  start_nginx "server { listen $NGX; server_name localhost;
    location /ws { $CORRECT proxy_read_timeout 5s; proxy_pass http://$BACKEND; } }"
  midsession "ws://$NGX/ws"
}
scn_midsession-haproxy-tunnel() {
  start_backend tcp
  HA_TUNNEL=5s start_haproxy "frontend fe
  bind $HAP
  default_backend be
backend be
  server s1 $BACKEND"
  midsession "ws://$HAP/ws"
}
scn_midsession-nginx-normal() {
  start_backend tcp
  start_nginx "server { listen $NGX; server_name localhost;
    location /ws { $CORRECT proxy_pass http://$BACKEND; } }"
  client_bg -url "ws://$NGX/ws" -n 3 -c 3 -msgs 5 -interval 1s
  sleep 1.3
  capture_start 0
  wait_clients
  capture_stop
}

# ---------------------------------------------------------------- run
wire_summary() { # FILE: request and status lines, and FIN/RST, per port pair
  tcpdump -nn -A -r "$1" 2>/dev/null | perl -ne '
    if (/IP6? [\d.]+\.(\d+) > [\d.]+\.(\d+): Flags \[([^\]]*)\]/) { $pp = "$1>$2"; my $f = $3; push @o, "  $pp [$f]" if $f =~ /[FR]/; next }
    while (/((?:GET|POST|HEAD) \S+ HTTP\/1\.[01]|HTTP\/1\.[01] \d{3}[ A-Za-z-]*)/g) { push @o, "  $pp $1" }
    END { print "$_\n" for @o }'
}

for name in "${SELECTED[@]}"; do
  D="$WORK/$name"
  mkdir -p "$D"; chmod 755 "$D"
  log "[$name]"
  BG_CLIENTS=()
  "scn_$name"
  stop_pid "$PROXY_PID" TERM
  [[ -n $BACKEND_PID ]] && stop_pid "$BACKEND_PID" TERM
  BACKEND_PID=""
  sed 's/^/   /' "$D/client.log" >&2
  install -m 644 "$D/cap.pcap" "$OUT/$name.pcap"
  log "[$name] wrote $OUT/$name.pcap ($(stat -c %s "$OUT/$name.pcap") bytes)"
  wire_summary "$OUT/$name.pcap" >&2 || true
done

write_manifest "$OUT/MANIFEST-production.tsv"
log "done: ${#SELECTED[@]} scenario(s)"
