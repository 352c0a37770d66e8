#!/usr/bin/env bash
# Regenerates the TLS captures in testdata/captures/ (tls-*): real packet
# captures of WebSocket handshakes over TLS (leg A, nginx on 127.0.0.1:8443
# with a self-signed certificate) proxied in plain HTTP to the gorilla backend
# (leg B, 127.0.0.1:9001), each with the client's NSS key log beside it.
#
#   sudo testdata/gen/tls.sh            # all scenarios
#   sudo testdata/gen/tls.sh NAME...    # only these (MANIFEST-tls.tsv is always rewritten whole)
#   testdata/gen/tls.sh --list          # scenario names
#
# Needs root (apt-get, tcpdump on lo). Uses only 127.0.0.1. Ends only the
# processes it started, by PID (a trap ends them on any exit).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$(mkdir -p "$HERE/../captures" && cd "$HERE/../captures" && pwd)

TLS_PORT=8443
BACKEND_PORT=9001
NGINX="127.0.0.1:$TLS_PORT"
BACKEND="127.0.0.1:$BACKEND_PORT"
BPF="tcp and (port $TLS_PORT or port $BACKEND_PORT)"

# name | expected_code | expected_hop | description   (the order is the run order)
# The expected codes hold when the capture is read with its key log; without
# it, leg A is encrypted_leg (the TLS metadata is still visible).
SCENARIOS=(
  "tls-13-aesgcm|ok|-|TLS 1.3 TLS_AES_128_GCM_SHA256 on leg A (Go client prefers AES-128), correct upgrade config: 101 on both legs, 2 echoed messages, close 1000"
  "tls-13-aes256|ok|-|as tls-13-aesgcm with ssl_conf_command Ciphersuites TLS_AES_256_GCM_SHA384 (SHA-384 key schedule)"
  "tls-13-chacha|ok|-|as tls-13-aesgcm with ssl_conf_command Ciphersuites TLS_CHACHA20_POLY1305_SHA256"
  "tls-12-aesgcm|ok|-|ssl_protocols TLSv1.2, ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256: TLS 1.2 on leg A, correct upgrade config, 101 on both legs"
  "tls-12-chacha|ok|-|ssl_protocols TLSv1.2, ssl_ciphers ECDHE-RSA-CHACHA20-POLY1305: TLS 1.2 on leg A, correct upgrade config, 101 on both legs"
  "tls-13-no-upgrade|upgrade_header_dropped|proxy|TLS 1.3 on leg A, location /ws { proxy_pass } with no upgrade directives: leg B is HTTP/1.0 without Upgrade, backend 400 relayed over TLS"
  "tls-13-keyupdate|ok|-|openssl s_client (TLS 1.3, TLS_AES_256_GCM_SHA384) sends the upgrade request, then a KeyUpdate with update_requested (nginx answers with its own), then a masked close frame 1000 under the new keys"
  "tls-cert-refused|tls_handshake_failed|client|TLS 1.3: the Go client trusts no CA and refuses nginx's self-signed certificate: bad_certificate alert (encrypted in TLS 1.3: readable only with the key log), no HTTP, no leg B"
  "tls-12-cert-refused|tls_handshake_failed|client|TLS 1.2: the Go client refuses the certificate: plaintext bad_certificate alert, no HTTP, no leg B"
  "tls-13-keys-injected|ok|-|tls-13-aesgcm.pcap with its key log embedded by editcap --inject-secrets tls,KEYLOG (pcapng Decryption Secrets Block)"
)

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---------------------------------------------------------------- 1. install
install_missing "nginx tcpdump editcap openssl ss" nginx-light tcpdump wireshark-common openssl iproute2
command -v go >/dev/null 2>&1 || die "go is not installed"

for p in "$TLS_PORT" "$BACKEND_PORT"; do
  if [[ -n "$(ss -ltnH "sport = :$p")" ]]; then die "port $p is already in use (gen.sh running?)"; fi
done

NGINX_VERSION=$(nginx -v 2>&1 | sed 's/.*nginx\///')
log "nginx $NGINX_VERSION, $(openssl version), $(tcpdump --version 2>&1 | head -1)"

# ---------------------------------------------------------------- 2. build, certificate
WORK=$(mktemp -d /tmp/wsdiag-tls.XXXXXX)
chmod 755 "$WORK"     # nginx workers (user nobody) must reach their temp dirs
log "building backend and tlsclient in $WORK/bin"
(cd "$HERE" && go build -buildvcs=false -o "$WORK/bin/" ./backend ./tlsclient)

# A self-signed RSA certificate for localhost (ECDHE-RSA suites for TLS 1.2).
openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null || die "openssl req failed"
chmod 644 "$WORK/key.pem" "$WORK/cert.pem"

# ---------------------------------------------------------------- 3. scenarios
CORRECT='proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade; proxy_set_header Host $host;'

# Each scenario function sets:
#   SSL      ssl_* directives for the server{}
#   LOCS     locations
#   CLIENT   tlsclient arguments, or "s_client-keyupdate"
set_defaults() {
  SSL="ssl_protocols TLSv1.2 TLSv1.3;"
  LOCS="location /ws { $CORRECT proxy_pass http://$BACKEND; }"
  CLIENT=(-url "wss://$NGINX/ws" -servername localhost -cacert "$WORK/cert.pem" -n 1 -msgs 2)
}

scn_tls-13-aesgcm() { CLIENT+=(-min 1.3); }
scn_tls-13-aes256() { SSL+=" ssl_conf_command Ciphersuites TLS_AES_256_GCM_SHA384;"; CLIENT+=(-min 1.3); }
scn_tls-13-chacha() { SSL+=" ssl_conf_command Ciphersuites TLS_CHACHA20_POLY1305_SHA256;"; CLIENT+=(-min 1.3); }
scn_tls-12-aesgcm() { SSL="ssl_protocols TLSv1.2; ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256;"; CLIENT+=(-max 1.2); }
scn_tls-12-chacha() { SSL="ssl_protocols TLSv1.2; ssl_ciphers ECDHE-RSA-CHACHA20-POLY1305;"; CLIENT+=(-max 1.2); }
scn_tls-13-no-upgrade() { LOCS="location /ws { proxy_pass http://$BACKEND; }"; CLIENT+=(-min 1.3); }
scn_tls-13-keyupdate() { CLIENT=(s_client-keyupdate); }
scn_tls-cert-refused() {
  CLIENT=(-url "wss://$NGINX/ws" -servername localhost -refuse -min 1.3 -n 1)
}
scn_tls-12-cert-refused() {
  SSL="ssl_protocols TLSv1.2; ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256;"
  CLIENT=(-url "wss://$NGINX/ws" -servername localhost -refuse -max 1.2 -n 1)
}

write_nginx_conf() { # DIR
  local d=$1
  {
  nginx_preamble "$d"
  cat <<EOF
    server {
        listen $NGINX ssl;
        server_name localhost;
        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        $SSL
        $LOCS
    }
}
EOF
  } > "$d/nginx.conf"
}

# s_client_keyupdate KEYLOG LOG: the upgrade request, a KeyUpdate asking the
# peer to update too ('K' at the start of a read is s_client's command), then
# a masked WebSocket close frame (1000) under the new keys. The frame bytes
# avoid 0x0a, which -crlf would rewrite.
s_client_keyupdate() {
  local keylog=$1 out=$2 fifo feeder_pid sc_pid
  fifo=$(dirname "$out")/s_client.in
  mkfifo "$fifo"
  {
    printf 'GET /ws HTTP/1.1\nHost: localhost:%s\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\nOrigin: https://localhost:%s\nUser-Agent: openssl-s_client\n\n' "$TLS_PORT" "$TLS_PORT"
    sleep 1
    printf 'K\n'
    sleep 1
    printf '\x88\x82\x11\x22\x33\x44\x12\xca'
    sleep 1.5
  } > "$fifo" &
  feeder_pid=$!; STARTED_PIDS+=("$feeder_pid")
  openssl s_client -connect "$NGINX" -servername localhost -tls1_3 -alpn http/1.1 \
    -keylogfile "$keylog" -crlf -CAfile "$WORK/cert.pem" < "$fifo" > "$out" 2>&1 &
  sc_pid=$!; STARTED_PIDS+=("$sc_pid")
  wait "$sc_pid" || true   # its status reflects how the server closed
  forget_pid "$sc_pid"
  stop_pid "$feeder_pid" TERM
  grep -aE '^(HTTP/1\.1|KEYUPDATE|Verify return code|Protocol|Cipher)' "$out" | sed 's/^/   s_client: /' >&2 || true
  grep -aq '^HTTP/1.1 101' "$out" || die "s_client: no 101"
  grep -aq 'KEYUPDATE' "$out" || die "s_client: no KEYUPDATE"
}

run_scenario() { # NAME
  local name=$1
  local d="$WORK/$name" ngx_pid be_pid cap_pid cl_pid cap_file
  set_defaults
  "scn_$name"
  cap_file="$d/$name.pcap"
  mkdir -p "$d"
  chmod 755 "$d"
  write_nginx_conf "$d"
  log "[$name] nginx: $SSL $LOCS"
  for p in "$TLS_PORT" "$BACKEND_PORT"; do
    if [[ -n "$(ss -ltnH "sport = :$p")" ]]; then die "port $p is already in use (gen.sh running?)"; fi
  done

  nginx -t -q -c "$d/nginx.conf" -p "$d" -e "$d/error.log" || die "[$name] nginx -t failed"
  : > "$d/error.log"

  nginx -c "$d/nginx.conf" -p "$d" -e "$d/error.log" &
  ngx_pid=$!; STARTED_PIDS+=("$ngx_pid")
  "$WORK/bin/backend" -addr "$BACKEND" 2> "$d/backend.log" &
  be_pid=$!; STARTED_PIDS+=("$be_pid")
  wait_listen "$TLS_PORT" "$ngx_pid" nginx
  wait_listen "$BACKEND_PORT" "$be_pid" backend

  tcpdump -i lo -Z root -U -s 0 -w "$cap_file" "$BPF" 2> "$d/capture.err" &
  cap_pid=$!; STARTED_PIDS+=("$cap_pid")
  wait_file_has "$d/capture.err" 'listening on' "$cap_pid" tcpdump
  sleep 1

  : > "$d/keylog"
  if [[ "${CLIENT[0]}" == s_client-keyupdate ]]; then
    log "[$name] openssl s_client with a KeyUpdate"
    s_client_keyupdate "$d/keylog" "$d/client.log"
  else
    log "[$name] tlsclient ${CLIENT[*]}"
    "$WORK/bin/tlsclient" "${CLIENT[@]}" -keylog "$d/keylog" > "$d/client.log" 2>&1 &
    cl_pid=$!; STARTED_PIDS+=("$cl_pid")
    wait "$cl_pid" || { cat "$d/client.log" >&2; die "[$name] client failed"; }
    forget_pid "$cl_pid"
    sed 's/^/   /' "$d/client.log" >&2
  fi
  sleep 2

  stop_pid "$cap_pid" INT
  cat "$d/capture.err" >&2
  grep -qx '0 packets dropped by kernel' "$d/capture.err" || die "[$name] tcpdump dropped packets (or did not say): see above"

  stop_pid "$ngx_pid" TERM
  stop_pid "$be_pid" TERM

  install -m 644 "$cap_file" "$OUT/$name.pcap"
  install -m 644 "$d/keylog" "$OUT/$name.keylog"
  log "[$name] wrote $OUT/$name.pcap ($(stat -c %s "$OUT/$name.pcap") bytes) and $name.keylog ($(wc -l < "$OUT/$name.keylog") lines)"
  summary "$OUT/$name.pcap" "$OUT/$name.keylog" >&2 || true
}

# summary PCAP KEYLOG: what Wireshark's own TLS dissector makes of the capture
# with the key log (an independent check of the decryption), when tshark is there.
summary() {
  command -v tshark >/dev/null 2>&1 || return 0
  tshark -n -r "$1" -o "tls.keylog_file:$2" -Y 'http or tls.alert_message or tls.handshake.type == 24' \
    -T fields -e tcp.srcport -e tcp.dstport -e tls.record.version -e tls.handshake.type \
    -e tls.alert_message.desc -e http.request.line -e http.response.code 2>/dev/null |
    sed 's/\\r\\n/ /g; s/^/   tshark: /' | head -20
}

for n in "${SELECTED[@]}"; do
  [[ $n == tls-13-keys-injected ]] && continue
  run_scenario "$n"
done

# The key log embedded in a pcapng Decryption Secrets Block.
for n in "${SELECTED[@]}"; do
  [[ $n == tls-13-keys-injected ]] || continue
  [[ -s "$OUT/tls-13-aesgcm.pcap" && -s "$OUT/tls-13-aesgcm.keylog" ]] || die "tls-13-keys-injected needs tls-13-aesgcm first"
  editcap --inject-secrets "tls,$OUT/tls-13-aesgcm.keylog" "$OUT/tls-13-aesgcm.pcap" "$OUT/tls-13-keys-injected.pcapng"
  chmod 644 "$OUT/tls-13-keys-injected.pcapng"
  log "[tls-13-keys-injected] wrote $OUT/tls-13-keys-injected.pcapng ($(stat -c %s "$OUT/tls-13-keys-injected.pcapng") bytes)"
done

# ---------------------------------------------------------------- manifest
write_manifest "$OUT/MANIFEST-tls.tsv"

log "done: ${#SELECTED[@]} scenario(s) with nginx $NGINX_VERSION; TLS captures: $(du -ch "$OUT"/tls-* | tail -1 | cut -f1)"
