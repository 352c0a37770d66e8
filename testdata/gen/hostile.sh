#!/usr/bin/env bash
# Regenerates hostile-bytes.pcap and hostile-bytes.nginx-error.log: bytes
# that act on a terminal (ESC sequences, BEL, DEL, C1 controls, bidi
# controls) in every field wsdiag shows — request path, header values,
# status reason, body, subprotocol, close reason, and the nginx error-log
# line that quotes them — sent through Debian's nginx by the raw client
# and backend of hostile/ (Go's net/http would refuse such bytes). See
# README.md beside this file ("Hostile bytes").
#
#   sudo testdata/gen/hostile.sh            # the one scenario (a few seconds)
#   testdata/gen/hostile.sh --list          # scenario names
#
# Needs root (apt-get, tcpdump on lo). Uses only 127.0.0.1: nginx on
# 24080, the backend on 24001, nothing on 24009 (the upstream that is
# down). Ends only the processes it started, by PID (a trap ends them on
# any exit).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$(mkdir -p "$HERE/../captures" && cd "$HERE/../captures" && pwd)

NGINX_PORT=24080
BACKEND_PORT=24001
DEAD_PORT=24009
NGX="127.0.0.1:$NGINX_PORT"
BACKEND="127.0.0.1:$BACKEND_PORT"
BPF="tcp and (port $NGINX_PORT or port $BACKEND_PORT or port $DEAD_PORT)"

# name | expected_code | expected_hop | description
SCENARIOS=(
  "hostile-bytes|proxy_rejected=1;closed_by_backend=1;backend_rejected=1;upstream_connect_failed=1|proxy;session;backend;connect|nginx correct config, hostile/ client and backend: GET /ws/<C0, C1, bidi> refused by nginx (400, control bytes in the request line); GET /ws/<C1, bidi> with hostile User-Agent, Referer, X-Evil, Sec-WebSocket-Protocol → 101 echoing the subprotocol with a hostile X-Evil, one message, backend close 4000 with a hostile reason, client close 1000 with one; GET /reject → backend \"400 Bad <hostile>\", hostile X-Evil and body; GET /down/<C1, bidi> with a hostile Referer → upstream down, nginx 502 and an error-log line quoting both"
)

source "$HERE/lib.sh"

install_missing "nginx tcpdump ss" nginx-light tcpdump iproute2
command -v go >/dev/null 2>&1 || die "go is not installed"
for p in "$NGINX_PORT" "$BACKEND_PORT" "$DEAD_PORT"; do
  if [[ -n "$(ss -ltnH "sport = :$p")" ]]; then die "port $p is already in use"; fi
done

WORK=$(mktemp -d /tmp/wsdiag-hostile.XXXXXX)
chmod 755 "$WORK"
BIN=$WORK/bin
log "building hostile in $BIN"
(cd "$HERE" && go build -buildvcs=false -o "$BIN/" ./hostile)

CORRECT='proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade; proxy_set_header Host $host;'

name=hostile-bytes
D="$WORK/$name"
mkdir -p "$D"; chmod 755 "$D"
log "[$name]"
"$BIN/hostile" serve -addr "$BACKEND" 2> "$D/backend.log" &
BPID=$!; STARTED_PIDS+=("$BPID")
wait_listen "$BACKEND_PORT" "$BPID" backend
{ nginx_preamble "$D"; cat <<EOF
    server {
        listen $NGX;
        location /ws { $CORRECT proxy_pass http://$BACKEND; }
        location /reject { $CORRECT proxy_pass http://$BACKEND; }
        location /down { $CORRECT proxy_pass http://127.0.0.1:$DEAD_PORT; }
    }
}
EOF
} > "$D/nginx.conf"
nginx -t -q -c "$D/nginx.conf" -p "$D" -e "$D/error.log" || die "nginx -t failed"
nginx -c "$D/nginx.conf" -p "$D" -e "$D/error.log" 2> "$D/nginx.log" &
NPID=$!; STARTED_PIDS+=("$NPID")
wait_listen "$NGINX_PORT" "$NPID" nginx

tcpdump -i lo -Z root -U -s 0 -w "$D/cap.pcap" "$BPF" 2> "$D/capture.err" &
CAP_PID=$!; STARTED_PIDS+=("$CAP_PID")
wait_file_has "$D/capture.err" 'listening on' "$CAP_PID" tcpdump
sleep 1
"$BIN/hostile" client -addr "$NGX" 2> "$D/client.log" || { cat "$D/client.log" >&2; die "client failed"; }
sleep 2   # tcpdump hands packets over in blocks
stop_pid "$CAP_PID" INT
cat "$D/capture.err" >&2
grep -qx '0 packets dropped by kernel' "$D/capture.err" || die "tcpdump dropped packets (or did not say)"
stop_pid "$NPID" QUIT
stop_pid "$BPID" TERM
cat -v "$D/client.log" "$D/backend.log" | sed 's/^/   /' >&2

install -m 644 "$D/cap.pcap" "$OUT/$name.pcap"
grep -aE '\[(warn|error|crit|alert|emerg)\]' "$D/error.log" > "$OUT/$name.nginx-error.log" || true
chmod 644 "$OUT/$name.nginx-error.log"
log "[$name] wrote $OUT/$name.pcap ($(stat -c %s "$OUT/$name.pcap") bytes), $(wc -l < "$OUT/$name.nginx-error.log") warn+ error-log lines:"
cat -v "$OUT/$name.nginx-error.log" | sed 's/^/   /' >&2
write_manifest "$OUT/MANIFEST-hostile.tsv"
