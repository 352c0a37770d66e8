#!/usr/bin/env bash
# The memory floods (capture/synth's Floods) in `live`: each flood is
# written as a pcap (into a temporary directory, removed at the end) and
# replayed with tcpreplay into one end of a veth pair between two network
# namespaces this script creates, while `wsdiag live --max-memory BUDGET`
# captures on the other end. Prints per flood the packets sent and
# captured, kernel drops, the peak RSS (VmHWM) against the budget + 32 MiB,
# and whether the well-formed attempts mixed in (path /ws) got their
# verdicts. Needs root, iproute2, tcpreplay; nothing leaves the two
# namespaces.
#
#   sudo cmd/wsbench/floods-live.sh [BUDGET=64M] [PPS=100000] [FLOOD...]
set -euo pipefail
BUDGET=${1:-64M}
PPS=${2:-100000}
shift 2 || shift $#
FLOODS=("$@")
((${#FLOODS[@]})) || FLOODS=(syn slowloris tunnels tlshello headercap newconn)
for tool in tcpreplay ip go; do
  command -v "$tool" >/dev/null 2>&1 || { echo "floods-live.sh: $tool not found (Debian: apt-get install tcpreplay iproute2 golang)" >&2; exit 1; }
done
[[ $(id -u) -eq 0 ]] || { echo "floods-live.sh: run as root (namespaces, live capture)" >&2; exit 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/wsdiag-floods-live.XXXXXX")
NA=membudgeta$$ NB=membudgetb$$
cleanup() { ip netns del "$NA" 2>/dev/null || true; ip netns del "$NB" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
(cd "$HERE" && CGO_ENABLED=0 go build -o "$W/wsdiag" ./cmd/wsdiag && go build -o "$W/wsbench" ./cmd/wsbench)
ip netns add "$NA"; ip netns add "$NB"
ip link add vfa netns "$NA" type veth peer name vfb netns "$NB"
ip -n "$NA" link set vfa mtu 65535 up; ip -n "$NB" link set vfb mtu 65535 up  # the header-cap flood sends 16 KB segments
lim=$(( $(echo "$BUDGET" | tr -dc 0-9) * 1024 + 32 * 1024 ))
printf '%-10s %9s %9s %7s %8s %12s %8s %s\n' flood sent captured drops budget "peak RSS" within? verdicts
for f in "${FLOODS[@]}"; do
  counts=$("$W/wsbench" gen -flood "$f" -n 0 -o "$W/$f.pcap")
  want_ok=$(echo "$counts" | grep -o '"ok":[0-9]*' | grep -o '[0-9]*$')
  want_br=$(echo "$counts" | grep -o '"upgrade_header_dropped":[0-9]*' | grep -o '[0-9]*$')
  ip netns exec "$NB" "$W/wsdiag" live -i vfb -Z root --max-memory "$BUDGET" --format json --progress never >"$W/out.jsonl" 2>"$W/err" &
  WS=$!
  sleep 1
  hwm=0
  ( ip netns exec "$NA" tcpreplay -q -i vfa --pps "$PPS" "$W/$f.pcap" >"$W/replay.log" 2>&1 || true ) &
  RP=$!
  while kill -0 "$RP" 2>/dev/null; do
    h=$(awk '/VmHWM/{print $2}' "/proc/$WS/status" 2>/dev/null || echo 0)
    ((h > hwm)) && hwm=$h
    sleep 0.5
  done
  sleep 3
  h=$(awk '/VmHWM/{print $2}' "/proc/$WS/status" 2>/dev/null || echo 0)
  ((h > hwm)) && hwm=$h
  kill -INT "$WS"; wait "$WS" || true
  rm -f "$W/$f.pcap"
  sent=$(grep -o 'Actual: [0-9]* packets' "$W/replay.log" | grep -o '[0-9]*' || echo "?")
  line=$(grep 'packets captured' "$W/err" || true)
  cap=$(echo "$line" | grep -o '^wsdiag: [0-9]*' | grep -o '[0-9]*' || echo "?")
  [[ $cap == "?" ]] && cap=$(echo "$line" | grep -o '[0-9]* packets captured' | grep -o '^[0-9]*' || echo "?")
  drops=$(echo "$line" | grep -o '[0-9]* dropped' | grep -o '[0-9]*' || echo "?")
  got_ok=$(grep '"type":"verdict"' "$W/out.jsonl" | grep '"path":"/ws"' | grep -c '"code":"ok"' || true)
  got_br=$(grep '"type":"verdict"' "$W/out.jsonl" | grep '"path":"/ws"' | grep -c '"code":"upgrade_header_dropped"' || true)
  printf '%-10s %9s %9s %7s %8s %8.1f MiB %8s %d/%d\n' "$f" "$sent" "$cap" "$drops" "$BUDGET" "$(echo "$hwm/1024" | bc -l)" \
    "$([[ $hwm -le $lim ]] && echo yes || echo NO)" $((got_ok + got_br)) $((want_ok + want_br))
done
