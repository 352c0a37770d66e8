#!/usr/bin/env bash
# The memory floods (capture/synth's Floods), each written as a pcap into
# a temporary directory (never committed; removed after its run) by the
# synthetic generator and read by `wsdiag read --max-memory BUDGET`.
# Prints, per flood, the packets, the budget, wsdiag's peak RSS
# (getrusage, as /usr/bin/time -v reports it), whether it stayed within
# the budget + 32 MiB, and whether the well-formed attempts mixed in got
# their verdicts.
#
#   cmd/wsbench/floods.sh [BUDGET=64M] [wsbench floods flags: -only syn,tunnels -scale 0.1 -workers 1 -keep]
#
# Needs Go and about 2 GB free in $TMPDIR (the header-cap flood).
set -euo pipefail
BUDGET=${1:-64M}
shift || true
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/wsdiag-floods.XXXXXX")
trap 'rm -rf "$W"' EXIT
(cd "$HERE" && CGO_ENABLED=0 go build -o "$W/wsdiag" ./cmd/wsdiag && go build -o "$W/wsbench" ./cmd/wsbench)
"$W/wsbench" floods -wsdiag "$W/wsdiag" -budget "$BUDGET" -dir "$W" "$@"
