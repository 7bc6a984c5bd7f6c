#!/usr/bin/env bash
# Start the Docker Engine in the background (log in /var/log/dockerd.log) unless
# one already answers, and wait for it with a bound (60 s).
set -euo pipefail
log() { printf '[docker %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# a dockerd process that is alive (a killed one can linger as a zombie)
live_dockerd() {
  local p
  for p in $(pgrep -x dockerd || true); do
    case "$(ps -o stat= -p "$p" 2>/dev/null)" in Z*|"") ;; *) return 0 ;; esac
  done
  return 1
}

start() {
  # A dockerd killed hard leaves its pid file behind and the next one refuses to start.
  rm -f /var/run/docker.pid
  log "starting dockerd"
  nohup setsid dockerd >>/var/log/dockerd.log 2>&1 </dev/null &
}

if docker version >/dev/null 2>&1; then log "engine already running"; exit 0; fi
starts=0
for _ in $(seq 1 60); do
  if docker version >/dev/null 2>&1; then log "engine up"; exit 0; fi
  if ! live_dockerd && [ "$starts" -lt 2 ]; then
    start
    starts=$((starts + 1))
  fi
  sleep 1
done
log "the engine did not answer within 60 s; last lines of /var/log/dockerd.log:"
tail -n 30 /var/log/dockerd.log >&2 || true
exit 1
