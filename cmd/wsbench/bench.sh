#!/usr/bin/env bash
# The speed benchmark from a clean clone: records the real-traffic capture
# (realwork.sh: nginx, root), writes the same traffic four times over
# (wsbench repeat: ~2 M packets, each copy a minute after the last),
# builds wsdiag and prints the ratios for both side by side, each against
# its target (wsbench run): speed against tshark and tcpdump's bare read,
# decode-only against tcpdump, peak RSS of the long file against the short
# one's, the same output with one worker and with all.
#
#   sudo [SYNTH=1] [NGINX_PORT=8800 BACKEND_PORT=9800] cmd/wsbench/bench.sh [RUNS=9]
#
# Files go to /tmp/wsbench-*.pcap and are kept for the next run; SYNTH=1
# adds the synthetic capture (wsbench gen: long sessions, 1.2 M packets).
set -euo pipefail
RUNS=${1:-9}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$HERE"
[[ -s /tmp/wsbench-real.pcap ]] || cmd/wsbench/realwork.sh /tmp/wsbench-real.pcap
go build -o /tmp/wsbench-bin ./cmd/wsbench
[[ -s /tmp/wsbench-real4.pcap ]] || /tmp/wsbench-bin repeat -k 4 -o /tmp/wsbench-real4.pcap /tmp/wsbench-real.pcap
files=(/tmp/wsbench-real.pcap /tmp/wsbench-real4.pcap)
if [[ -n "${SYNTH:-}" ]]; then
  [[ -s /tmp/wsbench-synth.pcap ]] || /tmp/wsbench-bin gen -o /tmp/wsbench-synth.pcap -n 1200000
  files+=(/tmp/wsbench-synth.pcap)
fi
CGO_ENABLED=0 go build -o /tmp/wsbench-wsdiag ./cmd/wsdiag
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs" >&2
/tmp/wsbench-bin run -wsdiag /tmp/wsbench-wsdiag -runs "$RUNS" "${files[@]}"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) at the end" >&2
