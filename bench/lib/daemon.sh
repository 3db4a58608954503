# Sourced by the shell benchmarks: starts a vdswapd and waits until it answers.
#   start_vdswapd BIN_DIR STATE_DIR [VDSWAPD FLAGS...]
# runs BIN_DIR/vdswapd --state-dir STATE_DIR FLAGS in the background (its log in
# STATE_DIR.log), exports VDSWAP_SOCKET, sets `daemon` to its pid and `cli` to
# BIN_DIR/vdswap, and returns once `vdswap status` answers; exits the script with the
# log's tail when the daemon does not answer within 20 s or dies first.
start_vdswapd() {
  local bin=$1 state=$2
  shift 2
  mkdir -p "$state"
  export VDSWAP_SOCKET=$state/vdswapd.sock
  cli=$bin/vdswap
  "$bin/vdswapd" --state-dir "$state" "$@" 2>>"$state.log" &
  daemon=$!
  for _ in $(seq 1 200); do
    "$cli" status >/dev/null 2>&1 && return 0
    kill -0 "$daemon" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench: vdswapd did not answer on $VDSWAP_SOCKET; its log:" >&2
  tail -n 20 "$state.log" >&2
  exit 1
}
