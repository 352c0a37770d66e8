#!/usr/bin/env bash
# Live-path drops: replays a capture at fixed packet rates into one end of
# a veth pair between two network namespaces this script creates, with
# wsdiag live capturing on the other end, and reports kernel drops per
# rate, for each count of capture workers (live --workers: sockets in one
# PACKET_FANOUT group), then the highest rate each count kept up with (0
# kernel drops, every packet sent captured), as tcpreplay reached it. Needs root, iproute2 and
# tcpreplay (Debian: apt-get install tcpreplay). Nothing leaves the two
# namespaces.
#
#   sudo [WORKERS="1 2"] [RING_MB=32] cmd/wsbench/replay.sh FILE.pcap [RATE...]     (default rates: 50000 100000 200000 400000)
#
# A RATE of "top" replays as fast as tcpreplay can (--topspeed); the
# "actual" column says what it reached (packets preloaded: -K). RING_MB is
# live's -B, the kernel ring per socket: a small one shows a worker that
# falls behind sooner than a sender this machine can run.
set -euo pipefail
FILE=${1:?usage: replay.sh FILE.pcap [RATE...]}
shift
RATES=("$@")
for tool in tcpreplay ip tcpdump go; do
  command -v "$tool" >/dev/null 2>&1 || { echo "replay.sh: $tool not found (Debian: apt-get install tcpreplay iproute2 tcpdump golang)" >&2; exit 1; }
done
((${#RATES[@]})) || RATES=(50000 100000 200000 400000)
read -r -a WORKERS <<< "${WORKERS:-1 2}"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
W=$(mktemp -d /tmp/wsdiag-replay.XXXXXX)
NA=wsdrpa$$ NB=wsdrpb$$
cleanup() { ip netns del "$NA" 2>/dev/null || true; ip netns del "$NB" 2>/dev/null || true; }
trap cleanup EXIT
(cd "$HERE" && CGO_ENABLED=0 go build -o "$W/wsdiag" ./cmd/wsdiag)
ip netns add "$NA"; ip netns add "$NB"
ip link add vra netns "$NA" type veth peer name vrb netns "$NB"
ip -n "$NA" link set vra up; ip -n "$NB" link set vrb up
N=$(tcpdump -r "$FILE" -nn 2>/dev/null | wc -l || true)
printf '%8s %10s %10s %10s %12s %10s %s\n' "workers" "rate(pps)" "actual" "sent" "captured" "drops" "verdicts"
declare -A BEST
for w in "${WORKERS[@]}"; do
  BEST[$w]=none
  for rate in "${RATES[@]}"; do
    secs=$(( N / ${rate/top/1000000} + 3 ))
    ip netns exec "$NB" "$W/wsdiag" live -i vrb -Z root -B "${RING_MB:-32}" --workers "$w" --format json --progress never --duration "${secs}s" >"$W/out.jsonl" 2>"$W/err" &
    WS=$!
    sleep 1
    speed=(--pps "$rate")
    [[ "$rate" == top ]] && speed=(--topspeed)
    ip netns exec "$NA" tcpreplay -q -K -i vra "${speed[@]}" "$FILE" >"$W/replay.log" 2>&1 || true
    wait "$WS" || true
    sent=$(grep -o 'Actual: [0-9]* packets' "$W/replay.log" | grep -o '[0-9]*' || echo "?")
    actual=$(grep -o '[0-9.]* pps' "$W/replay.log" | head -1 | cut -d. -f1 || echo "?")
    line=$(grep 'packets captured' "$W/err" || true)
    cap=$(echo "$line" | grep -o '^wsdiag: [0-9]*' | grep -o '[0-9]*' || echo "?")
    drops=$(echo "$line" | grep -o '[0-9]* dropped' | grep -o '[0-9]*' || echo "?")
    verdicts=$(grep -c '"type":"verdict"' "$W/out.jsonl" || true)
    printf '%8s %10s %10s %10s %12s %10s %s\n' "$w" "$rate" "$actual" "$sent" "$cap" "$drops" "$verdicts"
    if [[ "$drops" == 0 && "$cap" == "$sent" && "$actual" =~ ^[0-9]+$ ]] && { [[ ${BEST[$w]} == none ]] || (( actual > BEST[$w] )); }; then BEST[$w]=$actual; fi
  done
done
for w in "${WORKERS[@]}"; do
  echo "highest zero-drop rate with $w worker(s): ${BEST[$w]} packets/s (as tcpreplay reached it; every packet sent captured, 0 kernel drops)"
done
