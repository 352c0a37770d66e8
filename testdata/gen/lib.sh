# Shared by gen.sh and tls.sh (source it after SCENARIOS is set): messages,
# scenario selection, and stopping every process the script started, by
# PID, whatever way it ends.

SCRIPT=$(basename "$0")
die() { echo "$SCRIPT: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

scenario_names() { local s; for s in "${SCENARIOS[@]}"; do echo "${s%%|*}"; done; }

if [[ "${1:-}" == "--list" ]]; then scenario_names; exit 0; fi
[[ $(id -u) -eq 0 ]] || die "run as root (apt-get, packet capture)"

SELECTED=("$@")
if [[ ${#SELECTED[@]} -eq 0 ]]; then mapfile -t SELECTED < <(scenario_names); fi
mapfile -t ALL_NAMES < <(scenario_names)
for n in "${SELECTED[@]}"; do
  known=0
  for k in "${ALL_NAMES[@]}"; do [[ "$k" == "$n" ]] && known=1; done
  [[ $known -eq 1 ]] || die "unknown scenario '$n' (see --list)"
done

# ---------------------------------------------------------------- cleanup
WORK=""
CREATED_POLICY=0
STARTED_PIDS=()   # every long-running process this script started

cleanup() {
  local rc=$? pid
  for pid in "${STARTED_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for pid in "${STARTED_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ $CREATED_POLICY -eq 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
  if [[ -n "$WORK" && -d "$WORK" ]]; then rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() { # drop a PID we already waited for from STARTED_PIDS
  local p keep=()
  for p in "${STARTED_PIDS[@]}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
  STARTED_PIDS=("${keep[@]}")
}

stop_pid() { # stop_pid PID SIGNAL
  local pid=$1 sig=${2:-TERM}
  if kill -0 "$pid" 2>/dev/null; then kill -"$sig" "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
  forget_pid "$pid"
}


wait_listen() { # PORT PID NAME: until PID (not someone else) listens on PORT
  local i
  for i in $(seq 100); do
    ss -ltnpH "sport = :$1" | grep -q "pid=$2," && return 0
    kill -0 "$2" 2>/dev/null || die "$3 exited before listening on $1"
    sleep 0.05
  done
  die "$3 is not listening on $1"
}

wait_file_has() { # FILE REGEX PID NAME
  local i
  for i in $(seq 100); do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { cat "$1" >&2; die "$4 exited"; }
    sleep 0.05
  done
  cat "$1" >&2
  die "$4 did not start"
}

