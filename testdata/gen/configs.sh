#!/usr/bin/env bash
# Captures through an nginx whose config is spread over several files the
# way real ones are: includes (a glob of sites, snippets inside locations),
# two servers on a port picked by server_name (exact, wildcard, regex) and
# default_server, prefix, ^~, = and regex locations (two regexes that both
# match: the first wins), a nested location, and nginx's
# proxy_set_header inheritance trap (a location that sets any
# proxy_set_header inherits none from its server). Each attempt goes to a
# known block; the test checks wsdiag names its file and line.
#
#   sudo testdata/gen/configs.sh            # capture (about 20 s)
#   testdata/gen/configs.sh --configs-only  # only NAME.nginx-T.txt
#
# Uses only 127.0.0.1: nginx on 8500 and 8501, the backend on 9500. Ends
# only the processes it started, by PID. Writes NAME.pcap,
# NAME.nginx-T.txt (nginx -T), NAME.nginx-error.log and
# MANIFEST-configs.tsv into testdata/captures.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$(cd "$HERE/../captures" && pwd)
BACKEND=127.0.0.1:9500
BPF='tcp and (port 8500 or port 8501 or port 9500)'
# The config lives here (fixed, so nginx -T names stable paths).
CONF=/tmp/wsdiag-configs.gen

# name | expected_code | expected_hop | description
SCENARIOS=(
  "configs-multi|ok=5;upgrade_header_dropped=5;upstream_http10=1;proxy_rejected=1|-;proxy;proxy;proxy|one nginx, config in 6 files: 12 attempts, each to a known server and location (see configs.sh)"
)

CONFIGS_ONLY=0
if [[ "${1:-}" == "--configs-only" ]]; then CONFIGS_ONLY=1; shift; fi
if ((CONFIGS_ONLY)) && [[ $(id -u) -ne 0 ]]; then
  id() { if [[ "${1:-}" == -u ]]; then echo 0; else command id "$@"; fi; }
fi
source "$HERE/lib.sh"
if ((CONFIGS_ONLY)); then unset -f id; fi

write_conf() {
  rm -rf "$CONF"
  mkdir -p "$CONF/sites" "$CONF/snippets" "$CONF/tmp"
  chmod 755 "$CONF"
  {
    nginx_preamble "$CONF"
    cat <<'EOF'
    include sites/*.conf;
}
EOF
  } > "$CONF/nginx.conf"
  # snippets/ws.conf: the recipe, included in locations
  cat > "$CONF/snippets/ws.conf" <<'EOF'
proxy_http_version 1.1;
proxy_set_header Upgrade $http_upgrade;
proxy_set_header Connection $connection_upgrade;
EOF
  # snippets/keepalive.conf: the upstream keep-alive recipe, wrong for WebSocket
  cat > "$CONF/snippets/keepalive.conf" <<'EOF'
proxy_http_version 1.1;
proxy_set_header Connection "";
EOF
  cat > "$CONF/sites/app.conf" <<EOF
server {
    listen 127.0.0.1:8500 default_server;
    server_name app.test;
    proxy_http_version 1.1;
    proxy_set_header Upgrade \$http_upgrade;
    proxy_set_header Connection \$connection_upgrade;

    location /ws/ {
        proxy_pass http://$BACKEND;
    }
    location /ws/trap {
        proxy_set_header X-Real-IP \$remote_addr;
        proxy_pass http://$BACKEND;
    }
    location ^~ /ws/static/ {
        proxy_pass http://$BACKEND;
    }
    location ~ \.js\$ {
        proxy_set_header X-Static 1;
        proxy_pass http://$BACKEND;
    }
    location ~ ^/ws/rx/ {
        proxy_pass http://$BACKEND;
    }
    location ~ ^/ws/rx/\d+\$ {
        return 418;
    }
    location /ws/nest/ {
        proxy_pass http://$BACKEND;
        location /ws/nest/deep {
            include snippets/keepalive.conf;
            proxy_pass http://$BACKEND;
        }
    }
    location = /ws/exact {
        proxy_http_version 1.0;
        proxy_pass http://$BACKEND;
    }
}
EOF
  cat > "$CONF/sites/other.conf" <<EOF
server {
    listen 127.0.0.1:8500;
    server_name other.test *.wild.test;
    location /ws/ {
        proxy_pass http://$BACKEND;
    }
}
EOF
  cat > "$CONF/sites/regex.conf" <<EOF
server {
    listen 127.0.0.1:8501;
    server_name ~^re\d+\.test\$;
    location /ws/ {
        include snippets/ws.conf;
        proxy_pass http://$BACKEND;
    }
}
server {
    listen 127.0.0.1:8501 default_server;
    server_name fallback.test;
    location / {
        return 403;
    }
}
EOF
}

# PORT HOST PATH per attempt, in order (the test expects the same order).
ATTEMPTS=(
  "8500 app.test /ws/a"             # location /ws/ (app.conf:8): ok, headers inherited
  "8500 app.test /ws/trap"          # app.conf:11: the inheritance trap
  "8500 app.test /ws/static/app.js" # ^~ app.conf:15 beats the regex \.js$: ok
  "8500 app.test /ws/b.js"          # regex app.conf:18: the trap in a regex location
  "8500 app.test /ws/rx/42"         # both regexes match, the first (app.conf:22) wins: ok
  "8500 app.test /ws/nest/deep"     # nested app.conf:30: the trap again, Connection "" from snippets/keepalive.conf:2
  "8500 app.test /ws/exact"         # = app.conf:35: proxy_http_version 1.0
  "8500 other.test /ws/a"           # other.conf:4: no upgrade directives
  "8500 x.wild.test /ws/a"          # *.wild.test: other.conf:4 again
  "8500 nosuch.test /ws/a"          # default_server app.test, app.conf:8: ok
  "8501 re7.test /ws/a"             # regex server_name, regex.conf:4 with snippets/ws.conf: ok
  "8501 nosuch.test /ws/a"          # default_server fallback.test, regex.conf:12: 403 by nginx
)

dump_conf() { # NAME
  nginx -T -q -c "$CONF/nginx.conf" -p "$CONF" -e "$CONF/error.log" > "$OUT/$1.nginx-T.txt" || die "nginx -T failed"
  chmod 644 "$OUT/$1.nginx-T.txt"
}

if ((CONFIGS_ONLY)); then
  write_conf
  dump_conf configs-multi
  log "wrote $OUT/configs-multi.nginx-T.txt"
  exit 0
fi

install_missing "nginx tcpdump ss" nginx-light tcpdump iproute2
for p in 8500 8501 9500; do
  if [[ -n "$(ss -ltnH "sport = :$p")" ]]; then die "port $p is already in use"; fi
done
WORK=$(mktemp -d /tmp/wsdiag-configs.XXXXXX)
(cd "$HERE" && go build -buildvcs=false -o "$WORK/bin/" ./backend ./client)

name=configs-multi
write_conf
nginx -t -q -c "$CONF/nginx.conf" -p "$CONF" -e "$CONF/error.log" || die "nginx -t failed"
: > "$CONF/error.log"
nginx -c "$CONF/nginx.conf" -p "$CONF" -e "$CONF/error.log" &
ngx_pid=$!; STARTED_PIDS+=("$ngx_pid")
"$WORK/bin/backend" -addr "$BACKEND" 2> "$WORK/backend.log" &
be_pid=$!; STARTED_PIDS+=("$be_pid")
wait_listen 8500 "$ngx_pid" nginx
wait_listen 8501 "$ngx_pid" nginx
wait_listen 9500 "$be_pid" backend

tcpdump -i lo -Z root -U -s 0 -w "$WORK/$name.pcap" "$BPF" 2> "$WORK/capture.err" &
cap_pid=$!; STARTED_PIDS+=("$cap_pid")
wait_file_has "$WORK/capture.err" 'listening on' "$cap_pid" tcpdump
sleep 1
for a in "${ATTEMPTS[@]}"; do
  read -r port host path <<< "$a"
  log "attempt: port $port Host $host $path"
  # one attempt each, in order; failures are the point
  "$WORK/bin/client" -url "ws://127.0.0.1:$port$path" -host "$host" -n 1 -msgs 1 -timeout 3s >&2 || true
  sleep 0.2
done
sleep 2
stop_pid "$cap_pid" INT
cat "$WORK/capture.err" >&2
grep -qx '0 packets dropped by kernel' "$WORK/capture.err" || die "tcpdump dropped packets (or did not say)"
stop_pid "$ngx_pid" TERM
stop_pid "$be_pid" TERM

install -m 644 "$WORK/$name.pcap" "$OUT/$name.pcap"
grep -E '\[(warn|error|crit|alert|emerg)\]' "$CONF/error.log" > "$OUT/$name.nginx-error.log" || true
chmod 644 "$OUT/$name.nginx-error.log"
dump_conf "$name"
write_manifest "$OUT/MANIFEST-configs.tsv"
log "wrote $OUT/$name.pcap ($(stat -c %s "$OUT/$name.pcap") bytes), $name.nginx-T.txt, $(wc -l < "$OUT/$name.nginx-error.log") error-log lines"
