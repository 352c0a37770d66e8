#!/usr/bin/env bash
# Regenerates the captures of proxies other than nginx alone: a two-proxy
# chain (haproxy → nginx), haproxy, Apache and Caddy, from Debian's packages.
#
#   sudo testdata/gen/proxies.sh            # all scenarios
#   sudo testdata/gen/proxies.sh NAME...    # only these
#   testdata/gen/proxies.sh --configs-only [NAME...]  # only the proxies' configs
#        (NAME.haproxy.cfg, NAME.apache2.conf, NAME.Caddyfile, NAME.nginx-T.txt)
#
# Uses only 127.0.0.1: the proxy on 8080 (and nginx on 8081 behind haproxy
# in the chain), the gorilla/websocket backend of gen.sh on 9001, nothing on
# 9009. Ends only the processes it started, by PID. Writes NAME.pcap and
# MANIFEST-proxies.tsv into testdata/captures.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$(cd "$HERE/../captures" && pwd)
BPF='tcp and (port 8080 or port 8081 or port 9001 or port 9009)'

# name | expected_code | expected_hop | description
SCENARIOS=(
  "haproxy-chain|upgrade_header_dropped|proxy|client → haproxy 127.0.0.1:8080 → nginx 127.0.0.1:8081 (no upgrade directives) → backend: the second proxy (nginx) drops Upgrade; three legs"
  "haproxy-correct|ok|-|haproxy mode http in front of the backend: it forwards the upgrade natively (and lower-cases header names)"
  "haproxy-backend-down|upstream_connect_failed|connect|haproxy to 127.0.0.1:9009 where nothing listens: RST to every SYN (haproxy retries), haproxy's own 503 page"
  "apache-no-upgrade|upgrade_header_dropped|proxy|Apache 2.4 ProxyPass without upgrade=websocket: mod_proxy_http drops Upgrade"
  "apache-correct|ok|-|Apache 2.4 ProxyPass … upgrade=websocket"
  "caddy-correct|ok|-|Caddy reverse_proxy (Go: canonicalised header names such as Sec-Websocket-Key)"
  "caddy-backend-down|upstream_connect_failed|connect|Caddy reverse_proxy to 127.0.0.1:9009 where nothing listens: 502 with an empty body"
)

die() { echo "proxies.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }
CONFIGS_ONLY=0
if [[ "${1:-}" == "--configs-only" ]]; then CONFIGS_ONLY=1; shift; fi
((CONFIGS_ONLY)) || [[ $(id -u) -eq 0 ]] || die "run as root (apt-get, packet capture)"

missing=()
for c in haproxy apache2 caddy nginx tcpdump; do command -v "$c" >/dev/null || missing+=("$c"); done
if ((${#missing[@]} && !CONFIGS_ONLY)); then
  created=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; created=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy apache2 caddy nginx tcpdump
  if [[ -n $created ]]; then rm -f /usr/sbin/policy-rc.d; fi
fi

WORK=$(mktemp -d /tmp/wsdiag-proxies.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
start() { "$@" & PIDS+=($!); }
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

if ((!CONFIGS_ONLY)); then
  mkdir -p "$WORK/bin"
  (cd "$HERE" && go build -buildvcs=false -o "$WORK/bin/" ./backend ./client)
fi

wait_port() {
  local i
  for i in $(seq 1 50); do
    if ss -ltn "sport = :$1" | grep -q LISTEN; then return 0; fi
    sleep 0.1
  done
  die "nothing listens on 127.0.0.1:$1"
}

nginx_chain_conf() { # nginx on 8081 with no upgrade directives
  mkdir -p "$1/logs"
  cat >"$1/nginx.conf" <<NGX
worker_processes 1;
pid $1/nginx.pid;
error_log $1/logs/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $1/tmp_body; proxy_temp_path $1/tmp_proxy;
  fastcgi_temp_path $1/tmp_fcgi; uwsgi_temp_path $1/tmp_uwsgi; scgi_temp_path $1/tmp_scgi;
  server { listen 127.0.0.1:8081; location / { proxy_pass http://127.0.0.1:9001; } }
}
NGX
}

haproxy_conf() { # $1 dir, $2 backend address
  cat >"$1/haproxy.cfg" <<HA
global
  maxconn 100
defaults
  mode http
  timeout connect 2s
  timeout client 10s
  timeout server 10s
  timeout tunnel 30s
frontend fe
  bind 127.0.0.1:8080
  default_backend be
backend be
  server s1 $2
HA
}

apache_conf() { # $1 dir, $2 extra ProxyPass options
  mkdir -p "$1/logs" "$1/run"
  local m=/usr/lib/apache2/modules
  cat >"$1/apache2.conf" <<AP
ServerRoot "$1"
PidFile "$1/run/apache2.pid"
Mutex file:$1/run default
LoadModule mpm_event_module $m/mod_mpm_event.so
LoadModule authz_core_module $m/mod_authz_core.so
LoadModule proxy_module $m/mod_proxy.so
LoadModule proxy_http_module $m/mod_proxy_http.so
User www-data
Group www-data
ServerName 127.0.0.1
Listen 127.0.0.1:8080
ErrorLog "$1/logs/error.log"
LogLevel warn
ProxyPass /ws http://127.0.0.1:9001/ws $2
AP
}

caddy_conf() { # $1 dir, $2 backend address
  cat >"$1/Caddyfile" <<CD
{
  admin off
  auto_https off
}
http://127.0.0.1:8080 {
  reverse_proxy $2
}
CD
}

run_scenario() {
  local name=$1 d="$WORK/$1" cap="$OUT/$1.pcap" backend_pid proxy_pid chain_pid="" tcpdump_pid
  mkdir -p "$d"
  log "$name"
  start "$WORK/bin/backend" -addr 127.0.0.1:9001; backend_pid=$!
  wait_port 9001
  case $name in
    haproxy-chain)
      nginx_chain_conf "$d"
      start nginx -c "$d/nginx.conf" -p "$d" -g 'daemon off;'; chain_pid=$!
      wait_port 8081
      haproxy_conf "$d" 127.0.0.1:8081
      start haproxy -db -f "$d/haproxy.cfg"; proxy_pid=$! ;;
    haproxy-correct) haproxy_conf "$d" 127.0.0.1:9001; start haproxy -db -f "$d/haproxy.cfg"; proxy_pid=$! ;;
    haproxy-backend-down) haproxy_conf "$d" 127.0.0.1:9009; start haproxy -db -f "$d/haproxy.cfg"; proxy_pid=$! ;;
    apache-no-upgrade) apache_conf "$d" ""; start apache2 -f "$d/apache2.conf" -DFOREGROUND; proxy_pid=$! ;;
    apache-correct) apache_conf "$d" "upgrade=websocket"; start apache2 -f "$d/apache2.conf" -DFOREGROUND; proxy_pid=$! ;;
    caddy-correct|caddy-backend-down)
      local up=127.0.0.1:9001; [[ $name == caddy-backend-down ]] && up=127.0.0.1:9009
      caddy_conf "$d" "$up"
      XDG_DATA_HOME=$d XDG_CONFIG_HOME=$d HOME=$d start caddy run --config "$d/Caddyfile" --adapter caddyfile; proxy_pid=$! ;;
    *) die "unknown scenario $name" ;;
  esac
  wait_port 8080
  tcpdump -i lo -U -s 0 -w "$cap" "$BPF" 2>"$d/tcpdump.err" & tcpdump_pid=$!; PIDS+=($tcpdump_pid)
  sleep 1
  "$WORK/bin/client" -url ws://127.0.0.1:8080/ws -n 3 -msgs 2 -timeout 5s >"$d/client.out" 2>&1 || true
  sleep 2
  kill -INT "$tcpdump_pid"; wait "$tcpdump_pid" 2>/dev/null || true
  cat "$d/tcpdump.err" >&2
  grep -qx '0 packets dropped by kernel' "$d/tcpdump.err" || die "[$name] tcpdump dropped packets"
  stop_pid "$proxy_pid"
  [[ -n $chain_pid ]] && stop_pid "$chain_pid"
  stop_pid "$backend_pid"
  sed 's/^/   client: /' "$d/client.out" >&2
}

# save_configs NAME: the scenario's proxy configs beside its capture, as
# written in a fixed directory (stable paths), for --proxy-config KIND:FILE
# and --nginx-config.
save_configs() {
  local name=$1 d=/tmp/wsdiag-proxies.configs/$1
  mkdir -p "$d"
  case $name in
    haproxy-chain)
      nginx_chain_conf "$d"; haproxy_conf "$d" 127.0.0.1:8081
      nginx -T -q -c "$d/nginx.conf" -p "$d" -e "$d/logs/error.log" >"$OUT/$name.nginx-T.txt" || die "[$name] nginx -T failed"
      cp "$d/haproxy.cfg" "$OUT/$name.haproxy.cfg" ;;
    haproxy-correct) haproxy_conf "$d" 127.0.0.1:9001; cp "$d/haproxy.cfg" "$OUT/$name.haproxy.cfg" ;;
    haproxy-backend-down) haproxy_conf "$d" 127.0.0.1:9009; cp "$d/haproxy.cfg" "$OUT/$name.haproxy.cfg" ;;
    apache-no-upgrade) apache_conf "$d" ""; cp "$d/apache2.conf" "$OUT/$name.apache2.conf" ;;
    apache-correct) apache_conf "$d" "upgrade=websocket"; cp "$d/apache2.conf" "$OUT/$name.apache2.conf" ;;
    caddy-correct) caddy_conf "$d" 127.0.0.1:9001; cp "$d/Caddyfile" "$OUT/$name.Caddyfile" ;;
    caddy-backend-down) caddy_conf "$d" 127.0.0.1:9009; cp "$d/Caddyfile" "$OUT/$name.Caddyfile" ;;
  esac
  chmod 644 "$OUT/$name".*
  log "[$name] configs saved beside the capture"
}

names=("$@")
if ((${#names[@]} == 0)); then for s in "${SCENARIOS[@]}"; do names+=("${s%%|*}"); done; fi
if ((CONFIGS_ONLY)); then
  for n in "${names[@]}"; do save_configs "$n"; done
  exit 0
fi
for n in "${names[@]}"; do run_scenario "$n"; save_configs "$n"; done

{
  printf 'name\texpected_code\texpected_hop\tdescription\n'
  for s in "${SCENARIOS[@]}"; do IFS='|' read -r n c h desc <<<"$s"; printf '%s\t%s\t%s\t%s\n' "$n" "$c" "$h" "$desc"; done
} >"$OUT/MANIFEST-proxies.tsv"
log "done: $(du -ch "${names[@]/#/$OUT/}".pcap 2>/dev/null | tail -1 || true)"
