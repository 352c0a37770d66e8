#!/usr/bin/env bash
# Captures of what a proxy host in a cluster or a cloud records (issue 23):
# overlay encapsulation on the underlay (VXLAN on 4789 and Flannel's 8472,
# Geneve, GRE, IPIP), two hosts' captures whose clocks disagree, the PROXY
# protocol (v1, v2 and both misconfigurations), a 101 a Node.js dev proxy
# never relays, TLS passthrough by SNI, WebSocket extensions hidden or
# stripped by the proxy, and the leftovers (tunnels cut on idle with no
# frame in the capture, a snap length that cuts the 101's extension line, a
# client that quits after a silence). See README.md beside this file ("The
# node").
#
#   sudo testdata/gen/node.sh            # all scenarios (about 4 min)
#   sudo testdata/gen/node.sh NAME...    # only these (the manifest is always rewritten whole)
#   testdata/gen/node.sh --list
#
# Everything runs in network namespaces this script creates and deletes
# (node-c: the clients, node-p: the proxy or load-balancer host, node-b:
# the backend or app host), joined by veth pairs on 10.231.0.0/16; nothing
# touches the host's own interfaces. Ends only the processes it started,
# by PID. Writes NAME.pcap (or .pcapng), NAME.nginx-error.log where nginx
# ran, and MANIFEST-node.tsv into testdata/captures.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$(mkdir -p "$HERE/../captures" && cd "$HERE/../captures" && pwd)

# name | expected_code | expected_hop | description   (the order is the run order)
# A code list "a=N;b=M" with hops "x;y" is a file with several kinds of attempt.
SCENARIOS=(
  "vxlan-nginx|ok=2;backend_rejected=1|-;backend|client (node-c) → nginx on the proxy host (node-p) → backend on another host (node-b) reached over a kernel VXLAN overlay (VNI 42, UDP 4789); captured on the proxy host's client-facing veth and its underlay veth (dumpcap, two interfaces, pcapng): the upstream leg is only in VXLAN; 2 attempts get 101, /nothere gets the backend's 404"
  "vxlan8472-haproxy|ok=2;backend_rejected=1|-;backend|as vxlan-nginx through haproxy, the overlay on Flannel's port (VNI 1, UDP 8472); tcpdump on each of the two veths, merged into one pcap by mergecap"
  "vxlan-any-nginx|ok=2;backend_rejected=1|-;backend|as vxlan-nginx, captured with tcpdump -i any on the proxy host: every upstream packet twice, decapsulated on the vxlan device and encapsulated on the underlay veth"
  "geneve-nginx|ok=2;backend_rejected=1|-;backend|as vxlan-nginx over Geneve (UDP 6081, VNI 77, inner Ethernet; testdata/gen/tunnel on TAP devices: this kernel has no geneve module)"
  "gre-nginx|ok=2;backend_rejected=1|-;backend|as vxlan-nginx over GRE with key 1234 (IP protocol 47, inner IPv4; testdata/gen/tunnel on TUN devices: no ip_gre module here)"
  "ipip-nginx|ok=2;backend_rejected=1|-;backend|as vxlan-nginx over IP-in-IP (IP protocol 4, Calico's IPIP mode; testdata/gen/tunnel: no ipip module here)"
  "pp-v1-nginx|ok=2;backend_rejected=1|-;backend|haproxy on a load-balancer host (node-p) with send-proxy (PROXY v1, text) in front of nginx on the app host (node-b, listen … proxy_protocol, set_real_ip_from the balancer, X-Forwarded-For \$proxy_protocol_addr) → backend on the app host's loopback; captured on the app host (-i any): the balancer's connection starts with PROXY TCP4 10.231.1.2 …; 2 attempts get 101, /nothere the backend's 404"
  "pp-v2-nginx|ok=2;backend_rejected=1|-;backend|as pp-v1-nginx with send-proxy-v2 (binary header, 28 bytes for TCP over IPv4)"
  "pp-v1-lb|ok=2;backend_rejected=1|-;backend|as pp-v1-nginx, captured on the balancer host instead (-i any): the client leg and the balancer's PROXY-prefixed upstream leg; nginx's own upstream is not on the wire"
  "pp-v1-stream-haproxy|ok=2;backend_rejected=1|-;backend|nginx's stream module (proxy_protocol on: v1) as the balancer, haproxy on the app host (bind … accept-proxy) → backend; captured on the app host"
  "pp-unexpected-nginx|proxy_protocol_mismatch=3|proxy|haproxy send-proxy to an nginx whose listen lacks proxy_protocol: nginx reads PROXY TCP4 … as a request line and answers 400 itself (haproxy relays it); captured on the app host"
  "pp-unexpected-v2-nginx|proxy_protocol_mismatch=3|proxy|as pp-unexpected-nginx with send-proxy-v2: nginx answers the binary header with 400"
  "pp-missing-nginx|proxy_protocol_mismatch=3|proxy|haproxy without send-proxy to nginx listen … proxy_protocol: nginx logs broken header and closes without a byte (haproxy answers the client 502); captured on the app host"
  "pp-missing-haproxy|proxy_protocol_mismatch=3|proxy|nginx stream without proxy_protocol to haproxy bind … accept-proxy: haproxy closes the connection without a byte; captured on the app host"
  "devproxy-http-proxy|upgrade_not_relayed=2|proxy|Node's http-proxy 1.18 (createProxyServer, proxy.web in http.createServer, no 'upgrade' handler) on the proxy host → gorilla backend on another host: the Upgrade goes upstream as a plain request, the backend answers 101, Node's HTTP client swallows it and the client's handshake times out after 3 s; captured on the proxy host (-i any)"
  "devproxy-hpm|upgrade_not_relayed=1;ok=1|proxy;-|express 5 + http-proxy-middleware 4 (createProxyMiddleware({ws: true}) without server.on('upgrade', proxy.upgrade)): the first upgrade, before any plain request, goes upstream as a plain request and its 101 is swallowed; a plain GET then makes the middleware subscribe to upgrades and the next attempt works"
  "devproxy-upgrade-ok|ok=2|-|http-proxy with server.on('upgrade', (req, socket, head) => proxy.ws(req, socket, head)): both attempts upgrade and echo"
  "tls-passthrough-haproxy|encrypted_leg=2;proxy_rejected=1|-;proxy|haproxy mode tcp on the proxy host routing by SNI (req.ssl_sni -i app.example, no default backend) to a TLS-terminating gorilla backend on another host: no HTTP on either leg; 2 attempts with SNI app.example relay the same TLS bytes both ways; 1 with SNI other.example is closed by haproxy right after its ClientHello; captured on the proxy host (-i any)"
  "tls-passthrough-stream|encrypted_leg=2;proxy_rejected=1|-;proxy|nginx stream ssl_preread (map \$ssl_preread_server_name, no route for other names) to nginx terminating TLS on the app host → backend on its loopback; captured on the proxy host: two TLS legs per attempt, the unmatched SNI closed by nginx after its ClientHello"
  "ext-hidden-nginx|ws_header_altered|proxy|nginx (correct upgrade directives) with proxy_hide_header Sec-WebSocket-Extensions in front of a compressing gorilla backend (EnableCompression): the backend's 101 agrees to permessage-deflate, the client's (gorilla, EnableCompression) does not show it; the backend's compressed echo (RSV1) makes the client fail the connection (close 1002)"
  "ext-hidden-node|ws_header_altered|proxy|as ext-hidden-nginx with a Node.js ws 8 backend (perMessageDeflate, threshold 0)"
  "ext-stripped-nginx|ok|-|nginx with proxy_set_header Sec-WebSocket-Extensions \"\": the client's permessage-deflate offer never reaches the compressing backend, which then does not compress; the tunnel works (a finding, not an error)"
  "ext-stripped-haproxy|ok|-|haproxy with http-request del-header Sec-WebSocket-Extensions: as ext-stripped-nginx"
  "idle-cut-nginx|idle_timeout=3|session|3 tunnels through nginx (proxy_read_timeout 5s) echo one message each, then go quiet; tcpdump starts 2 s later (-i any on the proxy host), so the file holds no handshake and no frame of them: only nginx's FINs on both legs of each tunnel 5 s after the last frame, and the peers' FINs; nginx -T beside it gives the timeout"
  "idle-cut-haproxy|idle_timeout=3|session|as idle-cut-nginx through haproxy with timeout tunnel 5s: haproxy FINs the client leg and resets the upstream leg"
  "snap200-compress-nginx|ok|-|nginx (correct) to a compressing gorilla backend, compressing gorilla client; tcpdump -s 200 on -i any keeps 128 payload bytes a packet: the 101's Sec-WebSocket-Extensions line is cut on both legs, and the compressed frames (RSV1) that follow are healthy"
  "snap200-compress-haproxy|ok|-|as snap200-compress-nginx through haproxy"
  "client-quits-idle|abnormal_close|session|nginx (correct, default 60 s timeouts) with a client on another host that echoes one message, stays silent 4 s and is killed (SIGKILL: its kernel FINs, no close frame); no hop in front of nginx: nothing cut the tunnel but the client"
  "front-idle-netns|front_idle_timeout|front|haproxy (timeout tunnel 3s, option forwardfor) on a balancer host in front of nginx on the app host; 3 tunnels echo one message and go quiet; haproxy resets nginx's client leg 3 s later (RST from the balancer, not the client, whose address is in X-Forwarded-For); captured on the app host (-i any)"
  "skew-lb|ok=5;backend_rejected=1|-;backend|two hosts, two captures: haproxy (option forwardfor) on the balancer host (node-p) in front of nginx on the app host (node-b) → backend on its loopback; this file is the balancer's (-i any: the client leg and the balancer→app leg); 5 attempts get 101, /nothere the backend's 404; read it with skew-app*.pcap"
  "skew-app|ok=5;backend_rejected=1|-;backend|the app host's capture of the same run (-i any: the balancer→app leg again, and nginx→backend on its loopback); the clocks agree"
  "skew-app-ahead|ok=5;backend_rejected=1|-;backend|skew-app.pcap with its clock 7.5 s ahead (editcap -t 7.5)"
  "skew-app-behind|ok=5;backend_rejected=1|-;backend|skew-app.pcap with its clock 4 s behind (editcap -t -4)"
  "skew2-lb|ok=3;backend_rejected=1|-;backend|a second shape: nginx as the balancer (node-p) to nginx on the app host (node-b) → backend; the balancer's file (dumpcap, pcapng, the client leg and the balancer→app leg)"
  "skew2-app-behind|ok=3;unpaired=1|-;-|the app host's file of that run holds only nginx→backend on its loopback (read alone: the 404 leg is unpaired; read with skew2-lb: ok=3;backend_rejected=1) (no leg in common with skew2-lb: the three hops share the Sec-WebSocket-Key and the frames), made 4 s behind with editcap -t -4 on the pcapng"
)

source "$HERE/lib.sh"

install_missing "nginx haproxy tcpdump dumpcap mergecap editcap ss perl" nginx-light haproxy tcpdump wireshark-common iproute2 perl
command -v go >/dev/null 2>&1 || die "go is not installed"

WORK=$(mktemp -d /tmp/wsdiag-node.XXXXXX)
chmod 755 "$WORK"
BIN=$WORK/bin
log "building the programs in $BIN"
(cd "$HERE" && go build -buildvcs=false -o "$BIN/" ./backend ./client ./tlsclient ./tlsbackend ./tunnel)

# npm packages (devproxy/package-lock.json) for the scenarios that run node
NODE_DIR=$WORK/devproxy
for n in "${SELECTED[@]}"; do
  if [[ $n == devproxy-* || $n == ext-*-node* ]]; then
    command -v npm >/dev/null 2>&1 || die "npm (node) is not installed: apt-get install -y npm"
    mkdir -p "$NODE_DIR"; cp "$HERE/devproxy/"*.js "$HERE/devproxy/package.json" "$HERE/devproxy/package-lock.json" "$NODE_DIR/"
    log "npm ci in $NODE_DIR"
    (cd "$NODE_DIR" && npm ci --silent --no-audit --no-fund >&2) || die "npm ci failed"
    break
  fi
done

CORRECT='proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade; proxy_set_header Host $host;'
NSS=(node-c node-p node-b)

# ---------------------------------------------------------------- network
# Namespaces are made per scenario and deleted after it (and on any exit).
net_down() {
  local n
  for n in "${NSS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
}
trap 'rc=$?; net_down; (exit $rc); cleanup' EXIT

# in_ns NS CMD...: run CMD in NS (in the background use ip netns exec directly,
# so that $! is the program itself: ip netns exec execs it)
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# veth NS_A IF_A ADDR_A NS_B IF_B ADDR_B (addresses with /len)
veth() {
  ip link add "$2" netns "$1" type veth peer name "$5" netns "$4"
  ip -n "$1" addr add "$3" dev "$2"; ip -n "$1" link set "$2" up
  ip -n "$4" addr add "$6" dev "$5"; ip -n "$4" link set "$5" up
}

# net_up: node-c 10.231.1.2 ─ 10.231.1.1 node-p 10.231.2.1 ─ 10.231.2.2 node-b
net_up() {
  net_down
  local n
  for n in "${NSS[@]}"; do ip netns add "$n"; ip -n "$n" link set lo up; done
  veth node-c c-p 10.231.1.2/24 node-p p-c 10.231.1.1/24
  veth node-p p-b 10.231.2.1/24 node-b b-p 10.231.2.2/24
  # no IPv6 chatter (router solicitations, MLD) in the captures
  for n in "${NSS[@]}"; do in_ns "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done
}

# overlay KIND: 10.231.3.1 (node-p) ─ 10.231.3.2 (node-b) over the underlay
# veth p-b / b-p. vxlan and vxlan8472 are the kernel's; the others are
# testdata/gen/tunnel in userspace.
overlay() {
  local kind=$1 ns me peer i=1
  for ns in node-p node-b; do
    if [[ $ns == node-p ]]; then me=10.231.2.1 peer=10.231.2.2; else me=10.231.2.2 peer=10.231.2.1; fi
    case $kind in
      vxlan) ip -n "$ns" link add ov0 type vxlan id 42 local "$me" remote "$peer" dstport 4789 dev "${ns#node-}-$([[ $ns == node-p ]] && echo b || echo p)" ;;
      vxlan8472) ip -n "$ns" link add ov0 type vxlan id 1 local "$me" remote "$peer" dstport 8472 dev "${ns#node-}-$([[ $ns == node-p ]] && echo b || echo p)" ;;
      geneve|gre|ipip)
        local args=(-mode "$kind" -dev ov0 -remote "$peer")
        [[ $kind == gre ]] && args+=(-key 1234)
        [[ $kind == geneve ]] && args+=(-vni 77)
        ip netns exec "$ns" "$BIN/tunnel" "${args[@]}" > "$D/tunnel.$ns.log" 2>&1 &
        STARTED_PIDS+=("$!")
        wait_file_has "$D/tunnel.$ns.log" '^ready' "$!" "tunnel in $ns"
        ip -n "$ns" link set ov0 mtu 1400 ;;
    esac
    [[ $ns == node-p ]] && i=1 || i=2
    ip -n "$ns" addr add "10.231.3.$i/24" dev ov0
    ip -n "$ns" link set ov0 up
  done
}

wait_listen_ns() { # NS PORT PID NAME
  local i
  for i in $(seq 100); do
    in_ns "$1" ss -ltnpH "sport = :$2" | grep -q "pid=$3," && return 0
    kill -0 "$3" 2>/dev/null || die "$4 exited before listening on $2"
    sleep 0.05
  done
  die "$4 is not listening on $2"
}

# ---------------------------------------------------------------- programs
D=""

start_backend() { # NS ADDR:PORT ARGS...
  local ns=$1 addr=$2; shift 2
  ip netns exec "$ns" "$BIN/backend" -addr "$addr" "$@" >> "$D/backend.log" 2>&1 &
  local pid=$!; STARTED_PIDS+=("$pid")
  wait_listen_ns "$ns" "${addr##*:}" "$pid" backend
}

# start_nginx NS PORT HTTP-BODY [TOP-LEVEL] [DIR]: the config's http {} after
# the preamble, TOP-LEVEL (load_module, stream {}) before it; DIR (default
# $D) holds its config, pid and logs. The scenario's error log is $D's.
start_nginx() {
  local ns=$1 port=$2 dir=${5:-$D}
  mkdir -p "$dir"; chmod 755 "$dir"
  { [[ -n ${4:-} ]] && printf '%s\n' "$4"; nginx_preamble "$dir"; printf '%s\n}\n' "$3"; } > "$dir/nginx.conf"
  in_ns "$ns" nginx -t -q -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log" || die "nginx -t failed"
  : > "$dir/error.log"
  ip netns exec "$ns" nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log" &
  local pid=$!; STARTED_PIDS+=("$pid")
  wait_listen_ns "$ns" "$port" "$pid" nginx
  [[ $dir == "$D" ]] && NGINX_RAN=1
  return 0
}
STREAM_MODULE='load_module /usr/lib/nginx/modules/ngx_stream_module.so;'


start_haproxy() { # NS PORT CONFIG-AFTER-DEFAULTS [MODE]
  local ns=$1 port=$2
  cat > "$D/haproxy.cfg" <<EOF
# generated by testdata/gen/$SCRIPT
global
  maxconn 100
defaults
  mode ${4:-http}
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  timeout tunnel ${HA_TUNNEL:-30s}
$3
EOF
  haproxy -c -q -f "$D/haproxy.cfg" || die "haproxy -c failed"
  ip netns exec "$ns" haproxy -db -f "$D/haproxy.cfg" 2> "$D/haproxy.log" &
  local pid=$!; STARTED_PIDS+=("$pid")
  wait_listen_ns "$ns" "$port" "$pid" haproxy
}

client() { # NS ARGS...
  local ns=$1; shift
  log "  client ($ns) $*"
  in_ns "$ns" "$BIN/client" "$@" >> "$D/client.log" 2>&1 || die "client failed"
}

# ---------------------------------------------------------------- capture
CAPS=()      # capture processes of the scenario
CAP_FILES=() # their files, in order

# cap_start NS IFACE FILE [SNAPLEN] [FILTER]: one tcpdump
cap_start() {
  local ns=$1 ifc=$2 f=$3 snap=${4:-0} filter=${5:-}
  ip netns exec "$ns" tcpdump -i "$ifc" -Z root -U -B 8192 -s "$snap" -w "$f" $filter 2> "$f.err" &
  local pid=$!; STARTED_PIDS+=("$pid"); CAPS+=("$pid"); CAP_FILES+=("$f")
  wait_file_has "$f.err" 'listening on' "$pid" tcpdump
}

# dumpcap_start NS FILE IFACE...: one dumpcap over several interfaces (pcapng)
dumpcap_start() {
  local ns=$1 f=$2 a=() i; shift 2
  for i in "$@"; do a+=(-i "$i"); done
  ip netns exec "$ns" dumpcap -q "${a[@]}" -w "$f" 2> "$f.err" &
  local pid=$!; STARTED_PIDS+=("$pid"); CAPS+=("$pid"); CAP_FILES+=("$f")
  local n
  for n in $(seq 100); do
    [[ -s $f ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$f.err" >&2; die "dumpcap exited"; }
    sleep 0.05
  done
}

cap_stop() {
  sleep 2 # capture hands packets over in blocks
  local p f
  for p in "${CAPS[@]}"; do stop_pid "$p" INT; done
  for f in "${CAP_FILES[@]}"; do
    cat "$f.err" >&2
    if grep -q 'packets dropped by kernel' "$f.err"; then
      grep -qx '0 packets dropped by kernel' "$f.err" || die "tcpdump dropped packets ($f)"
    elif grep -q '^Packets received/dropped' "$f.err"; then
      if grep '^Packets received/dropped' "$f.err" | grep -qvE '/0 \(pcap:0/dumpcap:0/flushed:0'; then die "dumpcap dropped packets ($f)"; fi
    fi
  done
  CAPS=()
}

# ---------------------------------------------------------------- scenarios
PX=10.231.1.1     # the proxy, as the client sees it
OVB=10.231.3.2    # the backend across the overlay

# overlay_run KIND PROXY: client → PROXY on node-p → backend over KIND
overlay_run() {
  net_up
  overlay "$1"
  start_backend node-b "$OVB:9000"
  if [[ $2 == nginx ]]; then
    start_nginx node-p 80 "server { listen $PX:80; location / { $CORRECT proxy_pass http://$OVB:9000; } }"
  else
    start_haproxy node-p 80 "frontend fe
  bind $PX:80
  default_backend be
backend be
  server s1 $OVB:9000"
  fi
}
overlay_clients() {
  client node-c -url "ws://$PX/ws" -n 2 -msgs 1
  client node-c -url "ws://$PX/nothere" -n 1
}

scn_vxlan-nginx() {
  overlay_run vxlan nginx
  dumpcap_start node-p "$D/cap.pcapng" p-c p-b
  sleep 1
  overlay_clients
  cap_stop
  RESULT=$D/cap.pcapng
}
scn_vxlan8472-haproxy() {
  overlay_run vxlan8472 haproxy
  cap_start node-p p-c "$D/a.pcap"
  cap_start node-p p-b "$D/b.pcap"
  sleep 1
  overlay_clients
  cap_stop
  mergecap -F pcap -w "$D/cap.pcap" "$D/a.pcap" "$D/b.pcap"
}
scn_vxlan-any-nginx() {
  overlay_run vxlan nginx
  cap_start node-p any "$D/cap.pcap"
  sleep 1
  overlay_clients
  cap_stop
}
tunnel_scn() { # KIND
  overlay_run "$1" nginx
  cap_start node-p p-c "$D/a.pcap"
  cap_start node-p p-b "$D/b.pcap"
  sleep 1
  overlay_clients
  cap_stop
  mergecap -F pcap -w "$D/cap.pcap" "$D/a.pcap" "$D/b.pcap"
}
scn_geneve-nginx() { tunnel_scn geneve; }
scn_gre-nginx() { tunnel_scn gre; }
scn_ipip-nginx() { tunnel_scn ipip; }

# ---- PROXY protocol: node-c client → node-p balancer → node-b app host
LB=10.231.2.1     # the balancer, as the app host sees it
APP=10.231.2.2    # the app host

pp_app_nginx() { # LISTEN-OPTIONS SERVER-DIRECTIVES: nginx on the app host → backend on its loopback
  start_backend node-b 127.0.0.1:9000
  start_nginx node-b 80 "server { listen $APP:80 $1; $2
    location / { $CORRECT proxy_pass http://127.0.0.1:9000; } }"
}
pp_app_nginx_pp() { pp_app_nginx proxy_protocol "set_real_ip_from $LB; real_ip_header proxy_protocol; proxy_set_header X-Forwarded-For \$proxy_protocol_addr;"; }
pp_app_haproxy() {
  start_backend node-b 127.0.0.1:9000
  start_haproxy node-b 80 "frontend fe
  bind $APP:80 accept-proxy
  default_backend be
backend be
  server s1 127.0.0.1:9000"
}
pp_front_haproxy() { # SERVER-OPTIONS
  start_haproxy node-p 80 "frontend fe
  bind $PX:80
  default_backend app
backend app
  server app $APP:80 $1"
}
pp_front_stream() { # STREAM-SERVER-DIRECTIVES
  start_nginx node-p 80 "" "$STREAM_MODULE
stream { server { listen $PX:80; proxy_pass $APP:80; $1 } }" "$D/front"
}
pp_clients() {
  client node-c -url "ws://$PX/ws" -n 2 -msgs 1
  client node-c -url "ws://$PX/nothere" -n 1
}
pp_run() { # CAPTURE-NS
  cap_start "$1" any "$D/cap.pcap"
  sleep 1
  pp_clients
  cap_stop
}
scn_pp-v1-nginx() { net_up; pp_app_nginx_pp; pp_front_haproxy send-proxy; pp_run node-b; }
scn_pp-v2-nginx() { net_up; pp_app_nginx_pp; pp_front_haproxy send-proxy-v2; pp_run node-b; }
scn_pp-v1-lb() { net_up; pp_app_nginx_pp; pp_front_haproxy send-proxy; pp_run node-p; }
scn_pp-v1-stream-haproxy() { net_up; pp_app_haproxy; pp_front_stream "proxy_protocol on;"; pp_run node-b; }
scn_pp-unexpected-nginx() { net_up; pp_app_nginx "" ""; pp_front_haproxy send-proxy; pp_run node-b; }
scn_pp-unexpected-v2-nginx() { net_up; pp_app_nginx "" ""; pp_front_haproxy send-proxy-v2; pp_run node-b; }
scn_pp-missing-nginx() { net_up; pp_app_nginx_pp; pp_front_haproxy ""; pp_run node-b; }
scn_pp-missing-haproxy() { net_up; pp_app_haproxy; pp_front_stream ""; pp_run node-b; }

# ---- Node.js dev-server proxies: node-c client → node-p Node proxy → node-b backend
BE=10.231.2.2     # the backend host, as the proxy host sees it

start_devproxy() { # MODE
  ip netns exec node-p node "$NODE_DIR/proxy.js" "$1" "$PX" 80 "http://$BE:9000" >> "$D/devproxy.log" 2>&1 &
  local pid=$!; STARTED_PIDS+=("$pid")
  wait_listen_ns node-p 80 "$pid" "node $1"
}
devproxy_run() { # MODE CLIENT-RUNS…: each run a quoted argument list
  net_up
  start_backend node-b "$BE:9000"
  start_devproxy "$1"; shift
  cap_start node-p any "$D/cap.pcap"
  sleep 1
  local run
  for run in "$@"; do
    # shellcheck disable=SC2086
    client node-c $run
  done
  cap_stop
  sed 's/^/   devproxy: /' "$D/devproxy.log" >&2
}
scn_devproxy-http-proxy() { devproxy_run http-proxy "-url ws://$PX/ws -n 2 -msgs 1 -timeout 3s"; }
scn_devproxy-hpm() {
  devproxy_run hpm "-url ws://$PX/ws -n 1 -msgs 1 -timeout 3s" \
    "-url ws://$PX/ws -n 0 -plain http://$PX/health -plain-n 1" "-url ws://$PX/ws -n 1 -msgs 1 -timeout 3s"
}
scn_devproxy-upgrade-ok() { devproxy_run http-proxy-upgrade "-url ws://$PX/ws -n 2 -msgs 1 -timeout 3s"; }

# ---- TLS passthrough: node-c tlsclient → node-p SNI router → node-b TLS server
tls_cert() { # a self-signed certificate for app.example in $D
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 -subj "/CN=app.example" \
    -addext "subjectAltName=DNS:app.example" -keyout "$D/key.pem" -out "$D/cert.pem" 2>/dev/null || die "openssl req failed"
  chmod 644 "$D/key.pem" "$D/cert.pem"
}
tlsclient() { # NS ARGS…: a wss client; a refused handshake is expected, not a failure
  local ns=$1; shift
  log "  tlsclient ($ns) $*"
  in_ns "$ns" "$BIN/tlsclient" "$@" >> "$D/client.log" 2>&1 || log "  (tlsclient exited $?)"
}
passthrough_clients() {
  tlsclient node-c -url "wss://$PX/ws" -servername app.example -cacert "$D/cert.pem" -n 2 -msgs 1
  tlsclient node-c -url "wss://$PX/ws" -servername other.example -cacert "$D/cert.pem" -n 1 -msgs 1 -timeout 3s
}
scn_tls-passthrough-haproxy() {
  net_up
  tls_cert
  ip netns exec node-b "$BIN/tlsbackend" -addr "$BE:9443" -cert "$D/cert.pem" -key "$D/key.pem" >> "$D/backend.log" 2>&1 &
  local pid=$!; STARTED_PIDS+=("$pid")
  wait_listen_ns node-b 9443 "$pid" tlsbackend
  start_haproxy node-p 443 "frontend fe
  bind $PX:443
  tcp-request inspect-delay 5s
  tcp-request content accept if { req.ssl_hello_type 1 }
  use_backend app if { req.ssl_sni -i app.example }
backend app
  server s1 $BE:9443" tcp
  cap_start node-p any "$D/cap.pcap"
  sleep 1
  passthrough_clients
  cap_stop
}
scn_tls-passthrough-stream() {
  net_up
  tls_cert
  start_backend node-b 127.0.0.1:9000
  start_nginx node-b 443 "server { listen $BE:443 ssl; server_name app.example;
    ssl_certificate $D/cert.pem; ssl_certificate_key $D/key.pem;
    location / { $CORRECT proxy_pass http://127.0.0.1:9000; } }" "" "$D/app"
  start_nginx node-p 443 "" "$STREAM_MODULE
stream {
  map \$ssl_preread_server_name \$route { app.example $BE:443; default \"\"; }
  server { listen $PX:443; ssl_preread on; proxy_pass \$route; }
}"
  cap_start node-p any "$D/cap.pcap"
  sleep 1
  passthrough_clients
  cap_stop
}

# ---- WebSocket extensions hidden or stripped: node-c → node-p proxy → node-b
ext_run() { # PROXY(nginx|haproxy) PROXY-DIRECTIVES BACKEND(gorilla|node)
  net_up
  if [[ $3 == node ]]; then
    ip netns exec node-b node "$NODE_DIR/server.js" "$BE" 9000 deflate >> "$D/backend.log" 2>&1 &
    local pid=$!; STARTED_PIDS+=("$pid")
    wait_listen_ns node-b 9000 "$pid" "node ws backend"
  else
    start_backend node-b "$BE:9000" -compress
  fi
  if [[ $1 == nginx ]]; then
    start_nginx node-p 80 "server { listen $PX:80; location / { $CORRECT $2 proxy_pass http://$BE:9000; } }"
  else
    start_haproxy node-p 80 "frontend fe
  bind $PX:80
  $2
  default_backend be
backend be
  server s1 $BE:9000"
  fi
  cap_start node-p any "$D/cap.pcap" "${SNAP:-0}"
  sleep 1
  client node-c -url "ws://$PX/ws" -n 1 -msgs 2 -compress -timeout 3s
  cap_stop
}
scn_ext-hidden-nginx() { ext_run nginx "proxy_hide_header Sec-WebSocket-Extensions;" gorilla; }
scn_ext-hidden-node() { ext_run nginx "proxy_hide_header Sec-WebSocket-Extensions;" node; }
scn_ext-stripped-nginx() { ext_run nginx 'proxy_set_header Sec-WebSocket-Extensions "";' gorilla; }
scn_ext-stripped-haproxy() { ext_run haproxy "http-request del-header Sec-WebSocket-Extensions" gorilla; }

# ---- leftovers: idle cuts with no frame in the file, snap length on
# ---- compressed sessions, a client that quits vs a hop in front
bg_client() { # NS ARGS…: a client in the background (waited for by wait_bg)
  local ns=$1; shift
  log "  client ($ns, background) $*"
  ip netns exec "$ns" "$BIN/client" "$@" >> "$D/client.log" 2>&1 &
  BG+=("$!"); STARTED_PIDS+=("$!")
}
wait_bg() {
  local p
  for p in "${BG[@]}"; do wait "$p" || true; forget_pid "$p"; done
  BG=()
}
idle_cut() { # PROXY(nginx|haproxy)
  net_up
  BG=()
  start_backend node-b "$BE:9000"
  if [[ $1 == nginx ]]; then
    start_nginx node-p 80 "server { listen $PX:80; location / { $CORRECT proxy_read_timeout 5s; proxy_pass http://$BE:9000; } }"
    in_ns node-p nginx -T -q -c "$D/nginx.conf" -p "$D" -e "$D/error.log" > "$D/nginx-T.txt" 2>/dev/null || true
  else
    HA_TUNNEL=5s start_haproxy node-p 80 "frontend fe
  bind $PX:80
  default_backend be
backend be
  server s1 $BE:9000"
  fi
  bg_client node-c -url "ws://$PX/ws" -n 3 -c 3 -msgs 1 -hold 10s -hold-read
  sleep 2
  cap_start node-p any "$D/cap.pcap"
  wait_bg
  cap_stop
  [[ -f $D/nginx-T.txt ]] && install -m 644 "$D/nginx-T.txt" "$OUT/$CUR.nginx-T.txt"
  return 0
}
scn_idle-cut-nginx() { idle_cut nginx; }
scn_idle-cut-haproxy() { idle_cut haproxy; }
scn_snap200-compress-nginx() { SNAP=200 ext_run nginx "" gorilla; }
scn_snap200-compress-haproxy() { SNAP=200 ext_run haproxy "" gorilla; }
scn_client-quits-idle() {
  net_up
  start_backend node-b "$BE:9000"
  start_nginx node-p 80 "server { listen $PX:80; location / { $CORRECT proxy_pass http://$BE:9000; } }"
  cap_start node-p any "$D/cap.pcap"
  sleep 1
  log "  client (node-c) killed after 4 s"
  ip netns exec node-c timeout -s KILL 4s "$BIN/client" -url "ws://$PX/ws" -n 1 -msgs 1 -hold 10s -hold-read >> "$D/client.log" 2>&1 || true
  cap_stop
}
scn_front-idle-netns() {
  net_up
  BG=()
  start_backend node-b 127.0.0.1:9000
  start_nginx node-b 80 "server { listen $APP:80; location / { $CORRECT proxy_pass http://127.0.0.1:9000; } }"
  HA_TUNNEL=3s start_haproxy node-p 80 "frontend fe
  bind $PX:80
  option forwardfor
  default_backend app
backend app
  server app $APP:80"
  cap_start node-b any "$D/cap.pcap"
  sleep 1
  client node-c -url "ws://$PX/ws" -n 3 -stagger 300ms -msgs 1 -hold 6s -hold-read
  cap_stop
}

# ---- two hosts, two captures, clocks that disagree
SKEW_RUN=""   # the run skew-lb made, which skew-app* reuse
skew_run() { # one run, both hosts' captures, kept in $WORK/skew
  [[ -n $SKEW_RUN ]] && return 0
  local keep=$D; D=$WORK/skew; mkdir -p "$D"; chmod 755 "$D"
  net_up
  start_backend node-b 127.0.0.1:9000
  start_nginx node-b 80 "server { listen $APP:80; location / { $CORRECT proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; proxy_pass http://127.0.0.1:9000; } }"
  start_haproxy node-p 80 "frontend fe
  bind $PX:80
  option forwardfor
  default_backend app
backend app
  server app $APP:80"
  cap_start node-p any "$D/lb.pcap"
  cap_start node-b any "$D/app.pcap"
  sleep 1
  client node-c -url "ws://$PX/ws" -n 5 -msgs 2 -stagger 50ms
  client node-c -url "ws://$PX/nothere" -n 1
  cap_stop
  for p in "${STARTED_PIDS[@]}"; do stop_pid "$p" TERM; done
  D=$keep SKEW_RUN=$WORK/skew
}
scn_skew-lb() { skew_run; cp "$SKEW_RUN/lb.pcap" "$D/cap.pcap"; }
scn_skew-app() { skew_run; cp "$SKEW_RUN/app.pcap" "$D/cap.pcap"; cp "$SKEW_RUN/error.log" "$D/error.log"; NGINX_RAN=1; }
scn_skew-app-ahead() { skew_run; editcap -F pcap -t 7.5 "$SKEW_RUN/app.pcap" "$D/cap.pcap"; }
scn_skew-app-behind() { skew_run; editcap -F pcap -t -4 "$SKEW_RUN/app.pcap" "$D/cap.pcap"; }
SKEW2_RUN=""
skew2_run() {
  [[ -n $SKEW2_RUN ]] && return 0
  local keep=$D; D=$WORK/skew2; mkdir -p "$D"; chmod 755 "$D"
  net_up
  start_backend node-b 127.0.0.1:9000
  start_nginx node-b 80 "server { listen $APP:80; location / { $CORRECT proxy_pass http://127.0.0.1:9000; } }" "" "$D/app"
  start_nginx node-p 80 "server { listen $PX:80; location / { $CORRECT proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; proxy_pass http://$APP:80; } }"
  dumpcap_start node-p "$D/lb.pcapng" p-c p-b
  cap_start node-b lo "$D/app.pcap"
  sleep 1
  client node-c -url "ws://$PX/ws" -n 3 -msgs 2 -stagger 50ms
  client node-c -url "ws://$PX/nothere" -n 1
  cap_stop
  for p in "${STARTED_PIDS[@]}"; do stop_pid "$p" TERM; done
  D=$keep SKEW2_RUN=$WORK/skew2
}
scn_skew2-lb() { skew2_run; cp "$SKEW2_RUN/lb.pcapng" "$D/cap.pcapng"; RESULT=$D/cap.pcapng; cp "$SKEW2_RUN/error.log" "$D/error.log"; NGINX_RAN=1; }
scn_skew2-app-behind() {
  skew2_run
  # as pcapng, shifted by editcap like the first way's pcap
  editcap -F pcapng -t -4 "$SKEW2_RUN/app.pcap" "$D/cap.pcapng"; RESULT=$D/cap.pcapng
}

# ---------------------------------------------------------------- run
wire_summary() { # FILE: request and status lines, FIN/RST, per address pair
  tshark -r "$1" -Y 'http.request or http.response or tcp.flags.fin==1 or tcp.flags.reset==1' \
    -T fields -e frame.time_relative -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport -e tcp.flags.str -e http.request.method -e http.request.uri -e http.response.code 2>/dev/null |
    awk -F'\t' '{ printf "  %8.4f %s:%s > %s:%s %s %s %s %s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }'
}

for name in "${SELECTED[@]}"; do
  D="$WORK/$name"
  mkdir -p "$D"; chmod 755 "$D"
  log "[$name]"
  RESULT=$D/cap.pcap NGINX_RAN=0 CUR=$name
  "scn_$name"
  for p in "${STARTED_PIDS[@]}"; do stop_pid "$p" TERM; done
  net_down
  [[ -f $D/client.log ]] && sed 's/^/   /' "$D/client.log" >&2
  ext=${RESULT##*.}
  install -m 644 "$RESULT" "$OUT/$name.$ext"
  if [[ $NGINX_RAN -eq 1 ]]; then
    grep -E '\[(warn|error|crit|alert|emerg)\]' "$D/error.log" > "$OUT/$name.nginx-error.log" || true
    chmod 644 "$OUT/$name.nginx-error.log"
  fi
  log "[$name] wrote $OUT/$name.$ext ($(stat -c %s "$OUT/$name.$ext") bytes)"
  wire_summary "$OUT/$name.$ext" >&2 || true
done

write_manifest "$OUT/MANIFEST-node.tsv"
log "done: ${#SELECTED[@]} scenario(s)"
