#!/usr/bin/env bash
# Regenerates the HTTP/2 and upstream-TLS captures in testdata/captures/
# (h2-*, upstream-*): headless Chromium opening a WebSocket over HTTP/2
# (RFC 8441 extended CONNECT) through haproxy, a client sending extended
# CONNECT to nginx (which never advertises it), and nginx speaking TLS (or
# not) to a TLS backend. Key logs of the client legs are written beside.
#
#   sudo testdata/gen/h2.sh            # all scenarios
#   sudo testdata/gen/h2.sh NAME...    # only these (MANIFEST-h2.tsv is always rewritten whole)
#   testdata/gen/h2.sh --list
#
# Needs root (apt-get, tcpdump on lo). Uses only 127.0.0.1 (ports 8643-8645
# and 9643-9645). Ends only the processes it started, by PID.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# OUT may be set to record elsewhere (the bench-* scenarios are for timing,
# not for testdata: H2_OUT=/tmp/h2bench testdata/gen/h2.sh bench-h2 bench-h1).
OUT=$(mkdir -p "${H2_OUT:-$HERE/../captures}" && cd "${H2_OUT:-$HERE/../captures}" && pwd)

FRONT=8643   # haproxy or nginx, TLS, client-facing
MID=8644     # nginx behind haproxy
PLAIN=8645   # nginx, plain HTTP, client-facing (upstream TLS scenarios)
BE=9643      # the plain gorilla backend
TLSBE=9644   # the TLS backend
BPF="tcp and (port $FRONT or port $MID or port $PLAIN or port $BE or port $TLSBE)"

# name | expected_code | expected_hop | description
SCENARIOS=(
  "h2-chromium-haproxy|ok|-|headless Chromium loads a page from haproxy 2.6 (TLS, ALPN h2) whose script opens wss:///ws: RFC 8441 extended CONNECT on stream 3, haproxy sends an HTTP/1.1 Upgrade to the backend, 101, then :status 200; one message echoed, close 1000"
  "h2-haproxy-nginx-no-upgrade|upgrade_header_dropped|proxy|as h2-chromium-haproxy, but haproxy forwards to nginx (no upgrade directives) in front of the backend: nginx drops Upgrade, backend 400, haproxy answers the CONNECT stream with 400"
  "h2-refused-haproxy|h2_websocket_refused|proxy|headless Chromium's extended CONNECT to haproxy (which advertises it) answered 403 by an http-request deny on /ws: haproxy refuses the stream itself, no upstream leg"
  "h2-refused-nginx|h2_websocket_refused|proxy|h2client sends extended CONNECT to nginx 1.22 (listen ssl http2), which never advertises SETTINGS_ENABLE_CONNECT_PROTOCOL: nginx refuses the stream"
  "upstream-tls-no-sni|upstream_tls_failed|connect|client → nginx :8645 → proxy_pass https://backend with proxy_ssl_server_name off (the default): no SNI, the TLS backend requiring SNI aborts the handshake; nginx 502"
  "upstream-tls-sni|ok|-|as upstream-tls-no-sni with proxy_ssl_server_name on and proxy_ssl_name localhost: TLS on leg B, 101 on both legs"
  "upstream-tls-verify-failed|upstream_tls_failed|connect|proxy_ssl_verify on with a trusted certificate that did not sign the backend's: nginx refuses the certificate (alert), 502"
  "upstream-plain-to-tls|upstream_scheme_mismatch|connect|proxy_pass http:// to the TLS backend's port: the backend answers the plain request with Go's 400 'Client sent an HTTP request to an HTTPS server'"
  "upstream-tls-to-plain|upstream_scheme_mismatch|connect|proxy_pass https:// to the plain backend: nginx's ClientHello gets an HTTP 400 back, the handshake fails, 502"
  "bench-h2|ok|-|timing only (H2_OUT): h2client through haproxy over HTTP/2 (RFC 8441), 20000 messages echoed one after the other"
  "bench-h1|ok|-|timing only (H2_OUT): the same traffic over HTTP/1.1 (haproxy offers only http/1.1, the gorilla tlsclient)"
)

source "$HERE/lib.sh"

install_missing "nginx haproxy chromium tcpdump openssl ss" nginx-light haproxy chromium tcpdump openssl iproute2
command -v go >/dev/null 2>&1 || die "go is not installed"
for p in $FRONT $MID $PLAIN $BE $TLSBE; do
  [[ -z "$(ss -ltnH "sport = :$p")" ]] || die "port $p is already in use"
done
log "$(haproxy -v | head -1), nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), $(chromium --version 2>/dev/null | head -1)"

WORK=$(mktemp -d /tmp/wsdiag-h2.XXXXXX)
chmod 755 "$WORK"
(cd "$HERE" && go build -buildvcs=false -o "$WORK/bin/" ./backend ./tlsbackend ./h2client ./client ./tlsclient)
openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost" \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
cat "$WORK/key.pem" "$WORK/cert.pem" > "$WORK/both.pem"
openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=other CA" \
  -keyout "$WORK/other-key.pem" -out "$WORK/other-ca.pem" 2>/dev/null

PAGE="<html><body><script>var w=new WebSocket('wss://localhost:$FRONT/ws');w.onopen=function(){w.send('hello from chromium');};w.onmessage=function(e){document.title='got:'+e.data;w.close(1000,'done');};w.onerror=function(){document.title='error';};w.onclose=function(e){document.title+=' close:'+e.code;};</script></body></html>"

haproxy_conf() { # DIR UPSTREAM [ALPN] [PAGE] [RULE]
  local alpn=${3:-h2,http/1.1} page=${4:-$PAGE} rule=${5:-}
  cat > "$1/haproxy.cfg" <<EOF
global
    log stderr format raw local0 info
defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    timeout tunnel 10s
frontend fe
    bind 127.0.0.1:$FRONT ssl crt $WORK/both.pem alpn $alpn
    http-request return status 200 content-type "text/html" string "$page" if { path / }
    http-request return status 404 if { path /favicon.ico }
    $rule
    default_backend be
backend be
    server up $2
EOF
}

nginx_conf() { # DIR SERVER-BODY
  { nginx_preamble "$1"; cat <<EOF
    server {
$2
    }
}
EOF
  } > "$1/nginx.conf"
}

UPGRADE='proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade;'

chromium_page() { # KEYLOG LOGFILE
  SSLKEYLOGFILE="$1" timeout 30 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$WORK/chromium-profile" \
    --ignore-certificate-errors --virtual-time-budget=5000 --dump-dom "https://localhost:$FRONT/" > "$2" 2>/dev/null || true
  rm -rf "$WORK/chromium-profile"
}

run_scenario() {
  local name=$1 d="$WORK/$1" pids=() cap_pid keylog=""
  mkdir -p "$d"; chmod 755 "$d"
  local start_be=1 start_tlsbe=0 tlsbe_flags=() client=()
  case $name in
    h2-chromium-haproxy)
      haproxy_conf "$d" "127.0.0.1:$BE"; client=(chromium) ;;
    h2-refused-haproxy)
      haproxy_conf "$d" "127.0.0.1:$BE" h2,http/1.1 "$PAGE" "http-request deny if { path /ws }"; client=(chromium) ;;
    bench-h2)
      haproxy_conf "$d" "127.0.0.1:$BE"; client=(h2client -msgs 20000) ;;
    bench-h1)
      haproxy_conf "$d" "127.0.0.1:$BE" http/1.1; client=(tlsclient -msgs 20000) ;;
    h2-haproxy-nginx-no-upgrade)
      haproxy_conf "$d" "127.0.0.1:$MID"
      nginx_conf "$d" "        listen 127.0.0.1:$MID;
        location /ws { proxy_pass http://127.0.0.1:$BE; }"
      client=(chromium) ;;
    h2-refused-nginx)
      nginx_conf "$d" "        listen 127.0.0.1:$FRONT ssl http2;
        ssl_certificate $WORK/cert.pem; ssl_certificate_key $WORK/key.pem;
        location /ws { $UPGRADE proxy_pass http://127.0.0.1:$BE; }"
      client=(h2client) ;;
    upstream-tls-no-sni|upstream-tls-sni|upstream-tls-verify-failed|upstream-plain-to-tls|upstream-tls-to-plain)
      start_tlsbe=1; tlsbe_flags=(-require-sni)
      local loc
      case $name in
        upstream-tls-no-sni) loc="proxy_pass https://127.0.0.1:$TLSBE;" ;;
        upstream-tls-sni) loc="proxy_ssl_server_name on; proxy_ssl_name localhost; proxy_pass https://127.0.0.1:$TLSBE;" ;;
        upstream-tls-verify-failed) loc="proxy_ssl_server_name on; proxy_ssl_name localhost; proxy_ssl_verify on; proxy_ssl_trusted_certificate $WORK/other-ca.pem; proxy_pass https://127.0.0.1:$TLSBE;" ;;
        upstream-plain-to-tls) loc="proxy_pass http://127.0.0.1:$TLSBE;" ;;
        upstream-tls-to-plain) loc="proxy_ssl_server_name on; proxy_ssl_name localhost; proxy_pass https://127.0.0.1:$BE;" ;;
      esac
      nginx_conf "$d" "        listen 127.0.0.1:$PLAIN;
        location /ws { $UPGRADE proxy_set_header Host \$host; $loc }"
      client=(client -url "ws://127.0.0.1:$PLAIN/ws" -n 1 -msgs 1) ;;
  esac

  "$WORK/bin/backend" -addr "127.0.0.1:$BE" 2> "$d/backend.log" & pids+=($!); STARTED_PIDS+=($!)
  wait_listen $BE "${pids[-1]}" backend
  if [[ $start_tlsbe -eq 1 ]]; then
    "$WORK/bin/tlsbackend" -addr "127.0.0.1:$TLSBE" -cert "$WORK/cert.pem" -key "$WORK/key.pem" "${tlsbe_flags[@]}" 2> "$d/tlsbackend.log" &
    pids+=($!); STARTED_PIDS+=($!)
    wait_listen $TLSBE "${pids[-1]}" tlsbackend
  fi
  if [[ -f "$d/nginx.conf" ]]; then
    nginx -t -q -c "$d/nginx.conf" -p "$d" -e "$d/error.log" || die "[$name] nginx -t failed"
    nginx -c "$d/nginx.conf" -p "$d" -e "$d/error.log" & pids+=($!); STARTED_PIDS+=($!)
    local ngx_port
    ngx_port=$(sed -n 's/.*listen 127.0.0.1:\([0-9]*\).*/\1/p' "$d/nginx.conf" | head -1)
    wait_listen "$ngx_port" "${pids[-1]}" nginx
  fi
  if [[ -f "$d/haproxy.cfg" ]]; then
    haproxy -db -f "$d/haproxy.cfg" 2> "$d/haproxy.log" & pids+=($!); STARTED_PIDS+=($!)
    wait_listen $FRONT "${pids[-1]}" haproxy
  fi

  tcpdump -i lo -Z root -U -s 0 -w "$d/$name.pcap" "$BPF" 2> "$d/capture.err" &
  cap_pid=$!; STARTED_PIDS+=("$cap_pid")
  wait_file_has "$d/capture.err" 'listening on' "$cap_pid" tcpdump
  sleep 1
  case ${client[0]} in
    chromium)
      keylog="$d/keylog"; : > "$keylog"
      chromium_page "$keylog" "$d/client.log"
      grep -o '<title>[^<]*</title>' "$d/client.log" | sed 's/^/   page: /' >&2 || true ;;
    h2client)
      keylog="$d/keylog"; : > "$keylog"
      "$WORK/bin/h2client" -addr "127.0.0.1:$FRONT" -keylog "$keylog" "${client[@]:1}" > "$d/client.log" 2>&1 || true
      sed 's/^/   /' "$d/client.log" | tail -5 >&2 ;;
    tlsclient)
      keylog="$d/keylog"; : > "$keylog"
      "$WORK/bin/tlsclient" -url "wss://127.0.0.1:$FRONT/ws" -insecure -keylog "$keylog" "${client[@]:1}" > "$d/client.log" 2>&1 || true
      sed 's/^/   /' "$d/client.log" | tail -3 >&2 ;;
    client)
      "$WORK/bin/client" "${client[@]:1}" > "$d/client.log" 2>&1 || true
      sed 's/^/   /' "$d/client.log" >&2 ;;
  esac
  sleep 2
  stop_pid "$cap_pid" INT
  grep -qx '0 packets dropped by kernel' "$d/capture.err" || { cat "$d/capture.err" >&2; die "[$name] tcpdump dropped packets"; }
  local p
  for p in "${pids[@]}"; do stop_pid "$p" TERM; done
  sed 's/^/   backend: /' "$d/backend.log" >&2
  if [[ -f "$d/tlsbackend.log" ]]; then sed 's/^/   tlsbackend: /' "$d/tlsbackend.log" >&2; fi
  if [[ -f "$d/error.log" ]]; then grep -E '\[(error|warn|crit)\]' "$d/error.log" | sed 's/^/   nginx: /' >&2 || true; fi
  if [[ -f "$d/haproxy.log" ]]; then grep -v '^\[NOTICE\]\|^\[WARNING\]' "$d/haproxy.log" | sed 's/^/   haproxy: /' >&2 || true; fi
  install -m 644 "$d/$name.pcap" "$OUT/$name.pcap"
  if [[ -n "$keylog" ]]; then install -m 644 "$keylog" "$OUT/$name.keylog"; fi
  if [[ -f "$d/error.log" ]]; then grep -E '\[(warn|error|crit|alert|emerg)\]' "$d/error.log" > "$OUT/$name.nginx-error.log" || true; fi
  log "[$name] wrote $OUT/$name.pcap ($(stat -c %s "$OUT/$name.pcap") bytes)"
}

for n in "${SELECTED[@]}"; do run_scenario "$n"; done
if [[ -z "${H2_OUT:-}" ]]; then
  SCENARIOS=("${SCENARIOS[@]:0:9}") # the bench-* ones are not testdata
  write_manifest "$OUT/MANIFEST-h2.tsv"
fi
