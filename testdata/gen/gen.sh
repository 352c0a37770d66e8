#!/usr/bin/env bash
# Regenerates testdata/captures/: real packet captures of WebSocket handshakes
# through Debian's nginx, one scenario per capture. See README.md beside this file.
#
#   sudo testdata/gen/gen.sh            # all scenarios (about 2 min)
#   sudo testdata/gen/gen.sh NAME...    # only these (MANIFEST.tsv is always rewritten whole)
#   testdata/gen/gen.sh --list          # scenario names
#   testdata/gen/gen.sh --configs-only [NAME...]  # only write NAME.nginx-T.txt (nginx -T of
#                                       # each scenario's config), no capture, no root needed
#
# Needs root (apt-get, tcpdump/dumpcap on lo and any). Uses only 127.0.0.1:
# nginx on 8080, the backend on 9001, nothing on 9009 ("backend down").
# Ends only the processes it started, by PID.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$(mkdir -p "$HERE/../captures" && cd "$HERE/../captures" && pwd)

NGINX_PORT=8080
BACKEND_PORT=9001
DEAD_PORT=9009
NGINX="127.0.0.1:$NGINX_PORT"
BACKEND="127.0.0.1:$BACKEND_PORT"
BPF="tcp and (port $NGINX_PORT or port $BACKEND_PORT or port $DEAD_PORT)"

# name | expected_code | expected_hop | description   (the order is the run order)
SCENARIOS=(
  "nginx-defaults|upgrade_header_dropped|proxy|location /ws { proxy_pass } with no upgrade directives: nginx sends HTTP/1.0, Connection: close, no Upgrade; backend 400 relayed"
  "http11-no-headers|upgrade_header_dropped|proxy|proxy_http_version 1.1 only: HTTP/1.1 upstream but Upgrade dropped, Connection: close; backend 400"
  "upgrade-no-connection|connection_not_upgrade|proxy|proxy_http_version 1.1 + Upgrade \$http_upgrade, no Connection header set: nginx sends Connection: close; backend 400"
  "keepalive-connection-empty|connection_not_upgrade|proxy|upstream keepalive 8 + Connection \"\": Upgrade forwarded, no Connection header on leg B, upstream connection reused; backend 400"
  "http10-with-headers|upstream_http10|proxy|proxy_http_version 1.0 with Upgrade and Connection upgrade set: HTTP/1.0 on leg B, backend answers 101 and the tunnel works (a risk, warn)"
  "backend-down|upstream_connect_failed|connect|correct directives, proxy_pass to 127.0.0.1:$DEAD_PORT where nothing listens: SYN answered by RST, nginx 502"
  "backend-timeout|upstream_timeout|backend|correct directives, backend /hang never answers, proxy_read_timeout 2s: nginx 504 after 2 s"
  "backend-closed-early|upstream_closed_early|backend|correct directives, backend /drop closes without answering: nginx 502 (upstream prematurely closed)"
  "origin-check|origin_mismatch|proxy|correct upgrade directives but Host not forwarded (leg B Host 127.0.0.1:$BACKEND_PORT, Origin http://$NGINX): backend /strict origin check 403 (finding host_rewritten)"
  "redirect|redirected|proxy|location /ws { return 301 /ws2; }: nginx answers 301 itself, no leg B"
  "path-rewrite-404|backend_rejected|backend|correct directives, proxy_pass http://$BACKEND/nothere/ turns /ws/x into /nothere/x: backend 404 (finding path_rewritten)"
  "backend-200|backend_not_websocket|backend|correct directives, backend /plain answers 200 text (not a WebSocket server)"
  "subprotocol-stripped|ws_header_altered|proxy|correct directives + proxy_set_header Sec-WebSocket-Protocol \"\": client offers chat, leg B has no Sec-WebSocket-Protocol, backend /proto 400"
  "correct|ok|-|the full correct config (http/1.1, Upgrade, Connection \$connection_upgrade map, Host \$host): 101 on both legs, 2 echoed messages, close 1000 each way"
  "proxy-denied|proxy_rejected|proxy|location /ws { deny all; }: nginx 403 itself, no leg B"
  "bad-accept|bad_accept|backend|correct directives, backend /badaccept answers 101 with a wrong Sec-WebSocket-Accept; nginx relays it, the client refuses and closes"
  "client-not-websocket|client_not_websocket|client|correct config, raw client request with Upgrade: websocket + Connection: Upgrade but no Sec-WebSocket-Key/Version; backend 400 relayed"
  "concurrent-20|ok=10;upgrade_header_dropped=10|-;proxy|one nginx: /ws/ok correct, /ws/broken no directives; 20 concurrent attempts (10 each, alternating) + 20 plain keep-alive GETs to /health in the same window"
  "any-sll2|ok|-|the correct scenario captured with tcpdump -i any: link type LINUX_SLL2 (276)"
  "pcapng-mixed|ok|-|the correct scenario captured by dumpcap into pcapng with two interfaces: lo (EN10MB, leg A, port $NGINX_PORT) and any (LINUX_SLL2, leg B, port $BACKEND_PORT)"
  "leg-a-only|upgrade_header_dropped|proxy|the nginx-defaults scenario captured with a filter on port $NGINX_PORT only: leg A only (leg B missing from the file); the relayed answer is gorilla's default refusal (400 Bad Request, Sec-Websocket-Version: 13) of the handshake the client sent whole"
  "idle-timeout|idle_timeout|session|correct config + proxy_read_timeout 5s: one message echoed, then both sides silent; nginx FINs both legs ~5 s after the last frame, no close frame (the client sees 1006)"
  "idle-one-direction|ok|-|correct config + proxy_read_timeout 5s, backend /sink never writes: the client sends a message every 1 s for 8 s; nginx keeps the tunnel open (one active direction is enough), client close 1000 answered"
  "big-message-nginx|ok|-|correct config + proxy_buffer_size 4k, proxy_buffers 4 4k: a 3 MiB binary message (one frame) echoed through nginx; snaplen 400 (big payloads cut, packet and HTTP headers kept)"
  "backend-read-limit|message_too_big|session|correct config, backend /limited has SetReadLimit(64 KiB), 3 attempts: each 1 MiB client message (one frame) gets close 1009 from the backend on leg B, then a backend RST (unread data); whether nginx relays the 1009 to the client before resetting leg A is a race (both outcomes in the file); snaplen 400"
  "backend-close-4000|closed_by_backend|session|correct config, backend /close4000 echoes the first message then sends close 4000 \"going away: test\"; the client answers close 4000"
  "intercepted-error|origin_mismatch|proxy|correct upgrade directives, Host not forwarded, backend /strict refuses (403), and proxy_intercept_errors + error_page 403 =502 makes nginx answer the client 502 with its own page: finding response_altered (the proxy did not relay the backend's answer)"
  "client-rst|abnormal_close|session|correct config: after the upgrade and one echoed message the client resets the connection (SO_LINGER 0: RST), no close frame"
)

CONFIGS_ONLY=0
if [[ "${1:-}" == "--configs-only" ]]; then CONFIGS_ONLY=1; shift; fi
if ((CONFIGS_ONLY)) && [[ $(id -u) -ne 0 ]]; then
  # lib.sh insists on root for captures; writing configs does not need it.
  id() { if [[ "${1:-}" == -u ]]; then echo 0; else command id "$@"; fi; }
fi
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if ((CONFIGS_ONLY)); then unset -f id; fi

# ---------------------------------------------------------------- 1. install
if ((!CONFIGS_ONLY)); then
install_missing "nginx tcpdump dumpcap editcap capinfos ss perl" nginx-light tcpdump wireshark-common iproute2 perl
command -v go >/dev/null 2>&1 || die "go is not installed"

# A system nginx started anyway: stop it through its own pidfile only.
if [[ -s /run/nginx.pid ]]; then
  syspid=$(tr -dc '0-9' < /run/nginx.pid)
  if [[ -n "$syspid" && "$(cat "/proc/$syspid/comm" 2>/dev/null)" == nginx ]]; then
    log "stopping the system nginx (PID $syspid from /run/nginx.pid)"
    kill -QUIT "$syspid"
    for _ in $(seq 50); do kill -0 "$syspid" 2>/dev/null || break; sleep 0.1; done
  fi
fi

for p in "$NGINX_PORT" "$BACKEND_PORT" "$DEAD_PORT"; do
  if [[ -n "$(ss -ltnH "sport = :$p")" ]]; then die "port $p is already in use"; fi
done

NGINX_VERSION=$(nginx -v 2>&1 | sed 's/.*nginx\///')
log "nginx $NGINX_VERSION, $(tcpdump --version 2>&1 | head -1)"

# ---------------------------------------------------------------- 2. build
WORK=$(mktemp -d /tmp/wsdiag-gen.XXXXXX)
chmod 755 "$WORK"     # nginx workers (user nobody) must reach their temp dirs
log "building backend and client in $WORK/bin"
(cd "$HERE" && go build -buildvcs=false -o "$WORK/bin/" ./backend ./client)
fi

# ---------------------------------------------------------------- 3. scenarios
# nginx location snippets
UPGRADE='proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade;'
CORRECT="$UPGRADE"' proxy_set_header Host $host;'

# Each scenario function sets:
#   LOCS        server{} body (locations)
#   HTTP_EXTRA  extra http{} directives (upstream blocks)
#   CLIENT      client argument lists; each element is one client process, all run at once
#   CAPTURE     lo | any | lo-8080 | mixed
#   SNAPLEN     tcpdump -s (0 = whole packets; 400 keeps packet and HTTP headers, cuts big payloads)
set_defaults() {
  LOCS=""
  HTTP_EXTRA=""
  CLIENT=()
  CAPTURE=lo
  SNAPLEN=0
}

scn_nginx-defaults() {
  LOCS="location /ws { proxy_pass http://$BACKEND; }"
  CLIENT=("-url ws://$NGINX/ws -n 3")
}
scn_http11-no-headers() {
  LOCS="location /ws { proxy_http_version 1.1; proxy_pass http://$BACKEND; }"
  CLIENT=("-url ws://$NGINX/ws -n 3")
}
scn_upgrade-no-connection() {
  LOCS='location /ws { proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_pass http://'"$BACKEND"'; }'
  CLIENT=("-url ws://$NGINX/ws -n 3")
}
scn_keepalive-connection-empty() {
  HTTP_EXTRA="upstream backend { server $BACKEND; keepalive 8; }"
  LOCS='location /ws { proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection ""; proxy_pass http://backend; }'
  CLIENT=("-url ws://$NGINX/ws -n 3")
}
scn_http10-with-headers() {
  LOCS='location /ws { proxy_http_version 1.0; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade"; proxy_pass http://'"$BACKEND"'; }'
  CLIENT=("-url ws://$NGINX/ws -n 3")
}
scn_backend-down() {
  LOCS="location /ws { $CORRECT proxy_pass http://127.0.0.1:$DEAD_PORT; }"
  CLIENT=("-url ws://$NGINX/ws -n 3")
}
scn_backend-timeout() {
  LOCS="location /hang { $CORRECT proxy_read_timeout 2s; proxy_pass http://$BACKEND; }"
  CLIENT=("-url ws://$NGINX/hang -n 2")
}
scn_backend-closed-early() {
  LOCS="location /drop { $CORRECT proxy_pass http://$BACKEND; }"
  CLIENT=("-url ws://$NGINX/drop -n 3")
}
scn_origin-check() {
  LOCS="location /strict { $UPGRADE proxy_pass http://$BACKEND; }"
  CLIENT=("-url ws://$NGINX/strict -n 3")
}
scn_intercepted-error() {
  LOCS="location /strict { $UPGRADE proxy_pass http://$BACKEND; proxy_intercept_errors on; error_page 403 =502 @oops; } location @oops { return 502; }"
  CLIENT=("-url ws://$NGINX/strict -n 3")
}

scn_redirect() {
  LOCS="location /ws { return 301 /ws2; }"
  CLIENT=("-url ws://$NGINX/ws -n 3")
}
scn_path-rewrite-404() {
  LOCS="location /ws/ { $CORRECT proxy_pass http://$BACKEND/nothere/; }"
  CLIENT=("-url ws://$NGINX/ws/x -n 3")
}
scn_backend-200() {
  LOCS="location /plain { $CORRECT proxy_pass http://$BACKEND; }"
  CLIENT=("-url ws://$NGINX/plain -n 3")
}
scn_subprotocol-stripped() {
  LOCS="location /proto { $CORRECT proxy_set_header Sec-WebSocket-Protocol \"\"; proxy_pass http://$BACKEND; }"
  CLIENT=("-url ws://$NGINX/proto -n 3 -subprotocol chat")
}
scn_correct() {
  LOCS="location /ws { $CORRECT proxy_pass http://$BACKEND; }"
  CLIENT=("-url ws://$NGINX/ws -n 3 -msgs 2")
}
scn_proxy-denied() {
  LOCS="location /ws { deny all; }"
  CLIENT=("-url ws://$NGINX/ws -n 3")
}
scn_bad-accept() {
  LOCS="location /badaccept { $CORRECT proxy_pass http://$BACKEND; }"
  CLIENT=("-url ws://$NGINX/badaccept -n 3")
}
scn_client-not-websocket() {
  LOCS="location /ws { $CORRECT proxy_pass http://$BACKEND; }"
  CLIENT=("-url ws://$NGINX/ws -n 3 -raw")
}
scn_concurrent-20() {
  LOCS="location /ws/ok { $CORRECT proxy_pass http://$BACKEND; }
        location /ws/broken { proxy_pass http://$BACKEND; }"
  CLIENT=("-url ws://$NGINX/ws/ok,ws://$NGINX/ws/broken -n 20 -c 20 -stagger 5ms -msgs 2 -hold 500ms -plain http://$NGINX/health -plain-n 20 -plain-gap 10ms")
}
scn_any-sll2() {
  scn_correct
  CAPTURE=any
}
scn_pcapng-mixed() {
  scn_correct
  CAPTURE=mixed
}
scn_leg-a-only() {
  scn_nginx-defaults
  CAPTURE=lo-8080
}
# Session scenarios: one attempt each, what happens after the 101.
scn_idle-timeout() {
  LOCS="location /ws { $CORRECT proxy_read_timeout 5s; proxy_pass http://$BACKEND; }"
  CLIENT=("-url ws://$NGINX/ws -n 1 -msgs 1 -hold 8s -hold-read")
}
scn_idle-one-direction() {
  LOCS="location /sink { $CORRECT proxy_read_timeout 5s; proxy_pass http://$BACKEND; }"
  CLIENT=("-url ws://$NGINX/sink -n 1 -msgs 9 -interval 1s -echo=false")
}
scn_big-message-nginx() {
  LOCS="location /ws { $CORRECT proxy_buffer_size 4k; proxy_buffers 4 4k; proxy_pass http://$BACKEND; }"
  CLIENT=("-url ws://$NGINX/ws -n 1 -msgs 1 -size 3145728 -binary")
  SNAPLEN=400
}
scn_backend-read-limit() {
  LOCS="location /limited { $CORRECT proxy_pass http://$BACKEND; }"
  CLIENT=("-url ws://$NGINX/limited -n 3 -msgs 1 -size 1048576 -binary")
  SNAPLEN=400
}
scn_backend-close-4000() {
  LOCS="location /close4000 { $CORRECT proxy_pass http://$BACKEND; }"
  CLIENT=("-url ws://$NGINX/close4000 -n 1 -msgs 1 -hold 3s -hold-read")
}
scn_client-rst() {
  LOCS="location /ws { $CORRECT proxy_pass http://$BACKEND; }"
  CLIENT=("-url ws://$NGINX/ws -n 1 -msgs 1 -abort")
}

write_nginx_conf() { # DIR
  local d=$1
  {
  nginx_preamble "$d"
  cat <<EOF
    $HTTP_EXTRA
    server {
        listen $NGINX;
        server_name localhost;
        $LOCS
        location = /health { proxy_pass http://$BACKEND; }
    }
}
EOF
  } > "$d/nginx.conf"
}

run_scenario() { # NAME
  local name=$1
  local d="$WORK/$name" ngx_pid be_pid cap_pid ext=pcap cap_file args
  local client_pids=()
  set_defaults
  "scn_$name"
  [[ $CAPTURE == mixed ]] && ext=pcapng
  cap_file="$d/$name.$ext"
  mkdir -p "$d"
  chmod 755 "$d"
  write_nginx_conf "$d"
  log "[$name] nginx config:"; grep -E 'location|upstream' "$d/nginx.conf" | sed 's/^ */     /' >&2

  nginx -t -q -c "$d/nginx.conf" -p "$d" -e "$d/error.log" || die "[$name] nginx -t failed"
  : > "$d/error.log"

  nginx -c "$d/nginx.conf" -p "$d" -e "$d/error.log" &
  ngx_pid=$!; STARTED_PIDS+=("$ngx_pid")
  "$WORK/bin/backend" -addr "$BACKEND" 2> "$d/backend.log" &
  be_pid=$!; STARTED_PIDS+=("$be_pid")
  wait_listen "$NGINX_PORT" "$ngx_pid" nginx
  wait_listen "$BACKEND_PORT" "$be_pid" backend

  case $CAPTURE in
    lo|any|lo-8080)
      local ifc=lo filter=$BPF
      [[ $CAPTURE == any ]] && ifc=any
      [[ $CAPTURE == lo-8080 ]] && filter="tcp and port $NGINX_PORT"
      tcpdump -i "$ifc" -Z root -U -s "$SNAPLEN" -w "$cap_file" "$filter" 2> "$d/capture.err" &
      cap_pid=$!; STARTED_PIDS+=("$cap_pid")
      wait_file_has "$d/capture.err" 'listening on' "$cap_pid" tcpdump
      ;;
    mixed)
      # leg A on lo (EN10MB), leg B on any (LINUX_SLL2): one pcapng, two IDBs of different link types
      dumpcap -q -i lo -f "tcp and port $NGINX_PORT" \
              -i any -y LINUX_SLL2 -f "tcp and (port $BACKEND_PORT or port $DEAD_PORT)" \
              -w "$cap_file" 2> "$d/capture.err" &
      cap_pid=$!; STARTED_PIDS+=("$cap_pid")
      sleep 0.5
      kill -0 "$cap_pid" 2>/dev/null || { cat "$d/capture.err" >&2; die "[$name] dumpcap exited"; }
      ;;
  esac
  sleep 1

  log "[$name] client ${CLIENT[*]}"
  for args in "${CLIENT[@]}"; do
    # shellcheck disable=SC2086  # args is a word list on purpose
    "$WORK/bin/client" $args > "$d/client.$((${#client_pids[@]} + 1)).log" 2>&1 &
    client_pids+=("$!"); STARTED_PIDS+=("$!")
  done
  local cp
  for cp in "${client_pids[@]}"; do
    wait "$cp" || die "[$name] client failed"
    forget_pid "$cp"
  done
  cat "$d"/client.*.log >&2
  sleep 2

  stop_pid "$cap_pid" INT
  cat "$d/capture.err" >&2
  case $CAPTURE in
    mixed)
      local ifaces
      ifaces=$(grep -c "^Packets received/dropped on interface" "$d/capture.err" || true)
      [[ $ifaces -eq 2 ]] || die "[$name] dumpcap did not report two interfaces"
      if grep "^Packets received/dropped on interface" "$d/capture.err" | grep -qvE '/0 \(pcap:0/dumpcap:0/flushed:0'; then
        die "[$name] dumpcap dropped packets"
      fi
      ;;
    *)
      grep -qx '0 packets dropped by kernel' "$d/capture.err" || die "[$name] tcpdump dropped packets (or did not say): see above"
      ;;
  esac

  stop_pid "$ngx_pid" TERM
  stop_pid "$be_pid" TERM

  install -m 644 "$cap_file" "$OUT/$name.$ext"
  grep -E '\[(warn|error|crit|alert|emerg)\]' "$d/error.log" > "$OUT/$name.nginx-error.log" || true
  chmod 644 "$OUT/$name.nginx-error.log"
  if grep -q 'upgraded connection' "$d/error.log"; then
    log "[$name] error-log lines about the upgraded connection (any level; [info] ones are not in the file):"
    grep 'upgraded connection' "$d/error.log" | sed 's/^/     /' >&2
  fi
  log "[$name] wrote $OUT/$name.$ext ($(stat -c %s "$OUT/$name.$ext") bytes), $(wc -l < "$OUT/$name.nginx-error.log") warn+ error-log lines"
  log "[$name] on the wire (request and status lines; leg A = port $NGINX_PORT, leg B = the others):"
  if [[ $ext == pcapng ]]; then
    capinfos "$OUT/$name.$ext" | grep -E 'Encapsulation|^ {10,}[A-Z].*\([0-9]+\)$|Number of|Filter string|Strict' >&2 || true
  else
    wire_summary "$OUT/$name.$ext" >&2 || true
    log "[$name] FIN and RST (seconds since the first packet):"
    close_summary "$OUT/$name.$ext" >&2 || true
  fi
}

# close_summary FILE: every FIN and RST with its leg and time since the first packet.
close_summary() {
  tcpdump -nn -ttttt -r "$1" 2>/dev/null | perl -ne '
    next unless /^\s*(\S+) IP6? ([\d.]+)\.(\d+) > ([\d.]+)\.(\d+): Flags \[([^\]]*)\]/;
    my ($t, $sp, $dp, $f) = ($1, $3, $5, $6);
    next unless $f =~ /[FR]/;
    my $leg = ($sp == '"$NGINX_PORT"' || $dp == '"$NGINX_PORT"') ? "A" : "B";
    $t =~ s/^00:00://;
    printf "  %10s  leg %s  %5d > %-5d [%s]\n", $t, $leg, $sp, $dp, $f;'
}

# wire_summary FILE: count of request/status lines per leg, in order of first appearance.
wire_summary() {
  tcpdump -nn -A -r "$1" 2>/dev/null | perl -ne '
    if (/IP6? [\d.]+\.(\d+) > [\d.]+\.(\d+):/) { $leg = ($1 == '"$NGINX_PORT"' || $2 == '"$NGINX_PORT"') ? "A" : "B"; next }
    while (/((?:GET|POST|HEAD) \S+ HTTP\/1\.[01]|HTTP\/1\.[01] \d{3}[ A-Za-z-]*)/g) {
      $k = "leg $leg: $1"; push @o, $k unless $n{$k}++;
    }
    END { printf "%6d  %s\n", $n{$_}, $_ for @o }'
}

# write_config_dump NAME: the scenario's config as `nginx -T` prints it,
# into NAME.nginx-T.txt beside the capture (for --nginx-config). The
# config lives in a fixed directory so the dump names stable paths.
write_config_dump() {
  local name=$1 d=/tmp/wsdiag-gen.configs/$1
  set_defaults
  "scn_$name"
  mkdir -p "$d"
  write_nginx_conf "$d"
  nginx -T -q -c "$d/nginx.conf" -p "$d" -e "$d/error.log" > "$OUT/$name.nginx-T.txt" 2> "$d/nginx-T.err" ||
    { cat "$d/nginx-T.err" >&2; die "[$name] nginx -T failed"; }
  chmod 644 "$OUT/$name.nginx-T.txt"
  log "[$name] wrote $OUT/$name.nginx-T.txt"
}

if ((CONFIGS_ONLY)); then
  for n in "${SELECTED[@]}"; do write_config_dump "$n"; done
  exit 0
fi

for n in "${SELECTED[@]}"; do
  run_scenario "$n"
  write_config_dump "$n"
done

# ---------------------------------------------------------------- manifest
write_manifest "$OUT/MANIFEST.tsv"

log "done: ${#SELECTED[@]} scenario(s) with nginx $NGINX_VERSION; captures in $OUT ($(du -sh "$OUT" | cut -f1))"
