#!/usr/bin/env bash
# Start the Docker Engine in the background (log in /var/log/dockerd.log) unless
# one already answers, and wait for it with a bound.
set -euo pipefail
log() { printf '[docker %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
if docker version >/dev/null 2>&1; then log "engine already running"; exit 0; fi
if ! pgrep -x dockerd >/dev/null 2>&1; then
  # A dockerd killed hard leaves its pid file behind and the next one refuses to start.
  rm -f /var/run/docker.pid
  log "starting dockerd"
  nohup setsid dockerd >>/var/log/dockerd.log 2>&1 </dev/null &
fi
for _ in $(seq 1 60); do
  if docker version >/dev/null 2>&1; then log "engine up"; exit 0; fi
  sleep 1
done
log "the engine did not answer within 60 s; last lines of /var/log/dockerd.log:"
tail -n 30 /var/log/dockerd.log >&2 || true
exit 1
