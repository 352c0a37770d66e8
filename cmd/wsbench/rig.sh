# rig.sh: what the live benchmarks share, sourced by soak.sh and
# livefloods.sh: a work directory $W, the processes they start ($PIDS,
# ended by PID on exit), the builds, the rig (nginx with the configuration
# the end-to-end tests run, from `wsbench nginxconf`, in front of the
# gorilla backend of testdata/gen) and the RSS log.

# rig_init NAME: checks root and nginx, makes $W and the exit trap.
rig_init() {
  [[ $(id -u) -eq 0 ]] || { echo "$1: run as root (live capture)" >&2; exit 2; }
  command -v nginx >/dev/null || { echo "$1: needs nginx (apt-get install nginx)" >&2; exit 2; }
  HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  W=$(mktemp -d "/tmp/wsdiag-${1%.sh}.XXXXXX")
  PIDS=()
  trap rig_cleanup EXIT
}

rig_cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}

# rig_build: wsdiag (static), wsbench, and testdata/gen's backend and
# client, into $W.
rig_build() {
  (cd "$HERE" && CGO_ENABLED=0 go build -o "$W/wsdiag" ./cmd/wsdiag && go build -o "$W/wsbench" ./cmd/wsbench)
  (cd "$HERE/testdata/gen" && go build -buildvcs=false -o "$W/" ./backend ./client)
}

# rig_start LISTEN BACKEND [wsbench nginxconf flags]: the backend on
# BACKEND and nginx on LISTEN in front of it (/ws/ok, /ws/broken).
rig_start() {
  local listen=$1 backend=$2
  shift 2
  mkdir -p "$W/nginx"
  "$W/wsbench" nginxconf -dir "$W/nginx" -listen "$listen" -backend "$backend" "$@" >"$W/nginx/nginx.conf"
  "$W/backend" -addr "$backend" >"$W/backend.log" 2>&1 & PIDS+=($!)
  nginx -c "$W/nginx/nginx.conf" -p "$W/nginx" -g 'daemon off;' & PIDS+=($!)
  sleep 1
}

# rig_rss PID EVERY: while PID runs, logs its RSS and the verdict lines
# of $W/verdicts.jsonl every EVERY seconds to $W/rss.txt.
rig_rss() {
  local start rss
  printf '%6s %10s %8s\n' "t(s)" "RSS(KiB)" "verdicts" >"$W/rss.txt"
  start=$(date +%s)
  while kill -0 "$1" 2>/dev/null; do
    rss=$(awk '/VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0)
    printf '%6d %10s %8d\n' $(( $(date +%s) - start )) "$rss" "$(grep -c '"type":"verdict"' "$W/verdicts.jsonl" || true)" >>"$W/rss.txt"
    sleep "$2"
  done
}
