#!/usr/bin/env bash
# Regenerates errorlog-same-path.pcap and errorlog-same-path.nginx-error.log:
# three attempts to the same host and path through Debian's nginx, about a
# second apart — the first upgraded, the second refused because the backend
# was stopped in between (nginx 502, "connect() failed" in its error log),
# the third upgraded again once the backend is back. The error log is kept
# whole, at level info, as nginx wrote it: which of its lines goes under
# which attempt is what the capture tests. See README.md beside this file
# ("Error-log lines and their attempts").
#
#   sudo testdata/gen/errorlog.sh            # the one scenario (about 6 s)
#   testdata/gen/errorlog.sh --list          # scenario names
#
# Needs root (apt-get, tcpdump on lo). Uses only 127.0.0.1: nginx on
# 24180, the backend on 24101. Ends only the processes it started, by PID
# (a trap ends them on any exit).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$(mkdir -p "$HERE/../captures" && cd "$HERE/../captures" && pwd)

NGINX_PORT=24180
BACKEND_PORT=24101
NGX="127.0.0.1:$NGINX_PORT"
BACKEND="127.0.0.1:$BACKEND_PORT"
BPF="tcp and (port $NGINX_PORT or port $BACKEND_PORT)"

# name | expected_code | expected_hop | description
SCENARIOS=(
  "errorlog-same-path|ok=2;upstream_connect_failed=1|-;connect|nginx correct config, GET /ws three times ~1 s apart from one client address: 101; then the backend stopped: SYN answered by RST, nginx 502 and one connect() failed line naming GET /ws; then the backend started again: 101. The whole error log at level info"
)

source "$HERE/lib.sh"

install_missing "nginx tcpdump ss" nginx-light tcpdump iproute2
command -v go >/dev/null 2>&1 || die "go is not installed"
for p in "$NGINX_PORT" "$BACKEND_PORT"; do
  if [[ -n "$(ss -ltnH "sport = :$p")" ]]; then die "port $p is already in use"; fi
done

WORK=$(mktemp -d /tmp/wsdiag-errorlog.XXXXXX)
chmod 755 "$WORK"
BIN=$WORK/bin
log "building backend and client in $BIN"
(cd "$HERE" && go build -buildvcs=false -o "$BIN/" ./backend ./client)

CORRECT='proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade; proxy_set_header Host $host;'

name=errorlog-same-path
D="$WORK/$name"
mkdir -p "$D"; chmod 755 "$D"
log "[$name]"
start_backend() {
  "$BIN/backend" -addr "$BACKEND" 2>> "$D/backend.log" &
  BPID=$!; STARTED_PIDS+=("$BPID")
  wait_listen "$BACKEND_PORT" "$BPID" backend
}
start_backend
{ nginx_preamble "$D"; cat <<EOF
    server {
        listen $NGX;
        server_name app.test;
        location /ws { $CORRECT proxy_pass http://$BACKEND; }
    }
}
EOF
} > "$D/nginx.conf"
nginx -t -q -c "$D/nginx.conf" -p "$D" -e "$D/error.log" || die "nginx -t failed"
nginx -c "$D/nginx.conf" -p "$D" -e "$D/error.log" 2> "$D/nginx.log" &
NPID=$!; STARTED_PIDS+=("$NPID")
wait_listen "$NGINX_PORT" "$NPID" nginx
: > "$D/error.log"   # only what the attempts make nginx write

tcpdump -i lo -Z root -U -s 0 -w "$D/cap.pcap" "$BPF" 2> "$D/capture.err" &
CAP_PID=$!; STARTED_PIDS+=("$CAP_PID")
wait_file_has "$D/capture.err" 'listening on' "$CAP_PID" tcpdump
sleep 1
client() { "$BIN/client" -url "ws://$NGX/ws" -n 1 -msgs 1 -ua "errorlog-$1" >> "$D/client.log" 2>&1; }
client 1
sleep 1
stop_pid "$BPID" TERM
client 2
sleep 1
start_backend
client 3
sleep 2   # tcpdump hands packets over in blocks
stop_pid "$CAP_PID" INT
cat "$D/capture.err" >&2
grep -qx '0 packets dropped by kernel' "$D/capture.err" || die "tcpdump dropped packets (or did not say)"
stop_pid "$NPID" QUIT
stop_pid "$BPID" TERM
sed 's/^/   /' "$D/client.log" >&2

install -m 644 "$D/cap.pcap" "$OUT/$name.pcap"
install -m 644 "$D/error.log" "$OUT/$name.nginx-error.log"
log "[$name] wrote $OUT/$name.pcap ($(stat -c %s "$OUT/$name.pcap") bytes), $(wc -l < "$OUT/$name.nginx-error.log") error-log lines:"
sed 's/^/   /' "$OUT/$name.nginx-error.log" >&2
write_manifest "$OUT/MANIFEST-errorlog.tsv"
