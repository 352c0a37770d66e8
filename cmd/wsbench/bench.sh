#!/usr/bin/env bash
# The speed benchmark from a clean clone: generates the synthetic capture
# (wsbench gen), records the real-traffic one (realwork.sh: nginx, root),
# builds wsdiag and prints the ratios for both side by side (wsbench run).
#
#   sudo cmd/wsbench/bench.sh [RUNS=9]        files go to /tmp/wsbench-*.pcap
set -euo pipefail
RUNS=${1:-9}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$HERE"
[[ -s /tmp/wsbench-synth.pcap ]] || go run ./cmd/wsbench gen -o /tmp/wsbench-synth.pcap -n 1200000
[[ -s /tmp/wsbench-real.pcap ]] || cmd/wsbench/realwork.sh /tmp/wsbench-real.pcap
go build -o /tmp/wsbench-wsdiag ./cmd/wsdiag
go build -o /tmp/wsbench-bin ./cmd/wsbench
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs" >&2
/tmp/wsbench-bin run -wsdiag /tmp/wsbench-wsdiag -runs "$RUNS" /tmp/wsbench-synth.pcap /tmp/wsbench-real.pcap
