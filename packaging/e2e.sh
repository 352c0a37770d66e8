#!/usr/bin/env bash
# End to end, as a sysadmin would run it: build the .deb, install it, run the
# installed wsdiag live on lo the way wsdiag.service does (not root, only
# CAP_NET_RAW, --format json, --metrics), scrape it with a real Prometheus
# every second, drive good, broken and idle-cut attempts through nginx, and
# check that Prometheus's answer to sum by (code) (wsdiag_attempts_total)
# equals the verdict lines. Also: promtool on the rules, systemd-analyze
# verify on the installed unit. Removes the package afterwards.
#
#   sudo packaging/e2e.sh          (.ci/run runs it; needs nginx, prometheus, curl)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [ "$(id -u)" != 0 ]; then echo "e2e.sh: needs root (dpkg -i, live capture)"; exit 1; fi
for c in nginx prometheus promtool curl setpriv dpkg; do
	command -v "$c" >/dev/null || { echo "e2e.sh: $c is not installed"; exit 1; }
done
if [ "$(dpkg-query -W -f='${Status}' wsdiag 2>/dev/null)" = "install ok installed" ]; then
	echo "e2e.sh: a wsdiag package is installed already; not touching it"; exit 1
fi

start=$(date +%s)
work=$(mktemp -d /tmp/wsdiag-e2e.XXXXXX)
chmod 755 "$work"
pids=()
installed=
cleanup() {
	# only what this script started, by PID
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ -n "$installed" ]; then dpkg -P wsdiag >/dev/null; fi
	if [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "e2e.sh: kept $work"; fi
}
trap cleanup EXIT
fail() { echo "e2e.sh: FAIL: $*"; for f in "$work"/*.log "$work"/live.err; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done; exit 1; }

# free TCP ports on 127.0.0.1, distinct
used=" "
freeport() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		case "$used" in *" $p "*) continue ;; esac
		if ! ss -Htln "sport = :$p" | grep -q .; then used+="$p "; echo "$p"; return; fi
	done
}
# waitfor PORT PATH WHAT: until GET answers 2xx
waitfor() {
	for _ in $(seq 100); do
		curl -fsS "http://127.0.0.1:$1$2" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	fail "$3 never answered on 127.0.0.1:$1$2"
}

# Prometheus's HTTP API: query EXPR; series LABEL EXPR prints "value count"
query() { curl -fsS --get "http://127.0.0.1:$pport/api/v1/query" --data-urlencode "query=$1"; }
# prints "label count" per series of a vector result
series() { query "$2" | grep -o "\"$1\":\"[^\"]*\"},\"value\":\[[0-9.e+]*,\"[0-9.e+]*\"" |
	sed -E "s/\"$1\":\"([^\"]*)\"\},\"value\":\[[^,]*,\"([^\"]*)\"/\1 \2/" | sort; }

echo "== build the .deb"
deb=$(cd packaging/mkdeb && go run . -o "$work/deb")
echo "$deb"
dpkg -i "$deb" >/dev/null
installed=1
echo "== installed: dpkg -c"
dpkg -c "$deb" | awk '{print $1, $6}'
/usr/bin/wsdiag version

echo "== systemd-analyze verify, promtool"
if command -v systemd-analyze >/dev/null; then
	systemd-analyze verify /lib/systemd/system/wsdiag.service || fail "systemd-analyze verify"
	echo "unit verified"
else
	echo "systemd-analyze not installed: unit not verified"
fi
promtool check rules /usr/share/doc/wsdiag/examples/alerts.yml
(cd /usr/share/doc/wsdiag/examples && promtool test rules alerts_test.yml)

echo "== nginx, backend, wsdiag live, prometheus"
(cd testdata/gen && go build -buildvcs=false -o "$work/bin/" ./backend ./client)
proxy=$(freeport) backend=$(freeport) mport=$(freeport) pport=$(freeport)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $work/nginx/t1; proxy_temp_path $work/nginx/t2; fastcgi_temp_path $work/nginx/t3; uwsgi_temp_path $work/nginx/t4; scgi_temp_path $work/nginx/t5;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:$proxy;
    location /ws/ok { proxy_pass http://127.0.0.1:$backend; proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade; proxy_set_header Connection \$connection_upgrade; }
    location /ws/idle { proxy_pass http://127.0.0.1:$backend; proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade; proxy_set_header Connection \$connection_upgrade;
      proxy_read_timeout 3s; }
    location /ws/broken { proxy_pass http://127.0.0.1:$backend; }
  }
}
EOF
"$work/bin/backend" -addr "127.0.0.1:$backend" >"$work/backend.log" 2>&1 &
pids+=($!)
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -g 'daemon off;' >"$work/nginx.log" 2>&1 &
pids+=($!)

# as wsdiag.service runs it: a user that is not root, CAP_NET_RAW only
setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all,+net_raw --ambient-caps=-all,+net_raw --bounding-set=-all,+net_raw \
	/usr/bin/wsdiag live -i lo --metrics "127.0.0.1:$mport" --format json --progress never --color never \
	"port $proxy or port $backend" >"$work/verdicts.jsonl" 2>"$work/live.err" &
livepid=$!
pids+=($livepid)

mkdir -p "$work/prom"
cat >"$work/prometheus.yml" <<EOF
global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [ /usr/share/doc/wsdiag/examples/alerts.yml ]
scrape_configs:
  - job_name: wsdiag
    static_configs: [ { targets: [ "127.0.0.1:$mport" ] } ]
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom" \
	--web.listen-address="127.0.0.1:$pport" >"$work/prometheus.log" 2>&1 &
pids+=($!)

for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$proxy/" && break; sleep 0.1; done
waitfor "$mport" /healthz "wsdiag live"
waitfor "$pport" /-/ready prometheus
# its first target sync comes up to 5 s after start; then a scrape
for _ in $(seq 100); do
	curl -fsS "http://127.0.0.1:$pport/api/v1/targets" | grep -q '"health":"up"' && break
	sleep 0.1
done
curl -fsS "http://127.0.0.1:$pport/api/v1/targets" | grep -q '"health":"up"' || fail "Prometheus does not scrape wsdiag"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mport/debug/pprof/")
[ "$code" = 404 ] || fail "wsdiag serves /debug/pprof/ ($code): only /metrics and /healthz"

echo "== drive attempts through nginx 127.0.0.1:$proxy"
c="$work/bin/client"
"$c" -url "ws://127.0.0.1:$proxy/ws/ok" -n 6 -c 3 >>"$work/client.log" 2>&1
"$c" -url "ws://127.0.0.1:$proxy/ws/broken" -n 4 -c 2 >>"$work/client.log" 2>&1
"$c" -url "ws://127.0.0.1:$proxy/ws/ok" -n 1 -raw >>"$work/client.log" 2>&1
# nginx cuts these after 3 s without a frame (proxy_read_timeout 3s); while
# they are open, Prometheus must see them in wsdiag_tunnels_open
"$c" -url "ws://127.0.0.1:$proxy/ws/idle" -n 2 -c 2 -msgs 1 -hold 5s -hold-read >>"$work/client.log" 2>&1 &
idlepid=$!
pids+=($idlepid)
for _ in $(seq 12); do
	sleep 0.2
	open=$(curl -fsS --get "http://127.0.0.1:$pport/api/v1/query" --data-urlencode 'query=wsdiag_tunnels_open' |
		grep -o '"value":\[[0-9.e+]*,"[0-9]*"' | sed -E 's/.*,"([0-9]*)"/\1/' || true)
	[ "$open" = 2 ] && break
done
echo "tunnels open during the idle hold: $open"
[ "$open" = 2 ] || fail "wsdiag_tunnels_open = $open while 2 idle tunnels are open"
wait "$idlepid"

# each verdict line reaches Prometheus within a scrape or two
want=13
for _ in $(seq 100); do
	n=$(query 'sum(wsdiag_attempts_total)' | grep -o '"value":\[[0-9.e+]*,"[0-9]*"' | sed -E 's/.*,"([0-9]*)"/\1/' || true)
	tun=$(query 'sum(wsdiag_tunnel_duration_seconds_count)' | grep -o '"value":\[[0-9.e+]*,"[0-9]*"' | sed -E 's/.*,"([0-9]*)"/\1/' || true)
	[ "${n:-0}" -ge "$want" ] && [ "${tun:-0}" -ge 8 ] && break
	sleep 0.2
done

echo "== Prometheus: sum by (code) (wsdiag_attempts_total)"
series code 'sum by (code) (wsdiag_attempts_total)' | tee "$work/prom-codes.txt"
echo "== the verdict lines, by code"
grep '"type":"verdict"' "$work/verdicts.jsonl" | grep -o '"code":"[a-z_0-9]*"' | cut -d'"' -f4 | sort | uniq -c |
	awk '{print $2, $1}' | tee "$work/verdict-codes.txt"
cmp -s "$work/prom-codes.txt" "$work/verdict-codes.txt" || fail "Prometheus and the verdict lines disagree"
# live judges an upgraded attempt when its session ends: the idle ones
# are idle_timeout (ok, were they judged at the handshake)
expect=$'client_not_websocket 1\nidle_timeout 2\nok 6\nupgrade_header_dropped 4'
if ! grep -q idle_timeout "$work/verdict-codes.txt"; then
	echo "e2e.sh: note: the idle tunnels were judged at the handshake"
	expect=$'client_not_websocket 1\nok 8\nupgrade_header_dropped 4'
fi
[ "$(cat "$work/verdict-codes.txt")" = "$expect" ] || fail "verdicts by code are not the attempts driven: $(cat "$work/verdict-codes.txt")"

echo "== Prometheus: tunnels and handshakes"
series closed_by 'sum by (closed_by) (wsdiag_tunnel_duration_seconds_count) > 0' | tee "$work/tunnels.txt"
[ "$(cat "$work/tunnels.txt")" = $'client 6\nproxy 2' ] || fail "tunnels by closed_by: want 6 client, 2 proxy"
series closed_by 'sum by (closed_by) (wsdiag_tunnel_duration_seconds_sum) / sum by (closed_by) (wsdiag_tunnel_duration_seconds_count) > 0' | sed 's/^/mean age s: /'
idle=$(series closed_by 'sum by (closed_by) (wsdiag_tunnel_duration_seconds_sum{closed_by="proxy"}) / 2' | awk '{print $2}')
awk -v a="$idle" 'BEGIN { exit !(a >= 2.9 && a <= 3.6) }' || fail "idle cuts at $idle s, want about 3 s (proxy_read_timeout 3s)"
series leg 'sum by (leg) (wsdiag_handshake_duration_seconds_count)' | tee "$work/legs.txt"
[ "$(cat "$work/legs.txt")" = $'client 8\nproxy_added 8\nupstream 8' ] || fail "handshake histograms: want 8 per leg"
series leg 'histogram_quantile(0.5, sum by (leg, le) (wsdiag_handshake_duration_seconds_bucket))' | sed 's/^/median s: /'
query 'wsdiag_capture_kernel_drops_total' | grep -q '"value":\[[0-9.e+]*,"0"\]' || fail "kernel drops"
query 'wsdiag_tunnels_open' | grep -q '"value":\[[0-9.e+]*,"0"\]' || fail "tunnels still open"
query 'wsdiag_build_info' | grep -o '"version":"[^"]*"'

kill -INT "$livepid"
wait "$livepid" || true
tail -1 "$work/live.err"
grep -q ' 0 dropped by kernel' "$work/live.err" || fail "live reported kernel drops"
echo "e2e.sh: PASS in $(($(date +%s) - start)) s"
