"""Every shell script devc-tasks runs inside a container, in one place.

The host sends each one as ``sh -c SCRIPT devc-tasks ARGS...`` through the
executor (``shell/executors.py``); they are data here, and their exit codes are
the contract with the Python that reads them (``shell/node.py``,
``shell/control.py``, ``shell/state/``). All of them follow the same rules:

- POSIX sh only, and only what a BusyBox userland (Alpine) has too: /bin/sh may
  be BusyBox ash, there may be no procps (tailscaled is found by scanning
  /proc), no ``find -delete``, no ``flock -w``.
- Bounded: every command that can hang runs under ``bounded SECS`` (``timeout``
  in whichever form the userland has, see ``SH_LIB``), and every wait is a loop
  against the wall clock; the host's exec deadline bounds the rest.
- One lock: a script that changes the node (start/stop tailscaled, ``up``, the
  state swap and reset) first takes ``LOCK``, the ``flock -n`` loop on
  ``paths.LOCK_FILE`` bounded by ``$DEVC_LOCK_WAIT``; it exits ``LOCK_BUSY``
  when another command keeps it. The lock dies with the script.
- No secret in argv or in the environment: an auth key travels as the first
  line of stdin (``UP_SCRIPT`` reads it with ``head``), settings as
  ``VAR=value`` words of ``env``, arguments as positional parameters.
- Our own exit codes (75-79, 3, 4) are distinct from tailscale's and from
  ``timeout``'s 124, so the host can tell what happened without parsing text.
"""

from __future__ import annotations

from devc_tasks.core.paths import DAEMON_LOG, DIR_MODE, LOCK_FILE, SOCKET, STATE_DIR, STATE_FILE, STATE_MAX_BYTES

__all__ = [
    "SH_LIB",
    "PROBE_SCRIPT",
    "PROBE_BODY",
    "AFTER_MARK",
    "LOCK",
    "UP_SCRIPT",
    "START_DAEMON_SCRIPT",
    "WAIT_RUNNING_SCRIPT",
    "STOP_DAEMON_SCRIPT",
    "STOP_ALL",
    "SWAP_SCRIPT",
    "AFTER_FAILED_SWAP_SCRIPT",
    "PRESENT_SCRIPT",
    "EMPTY_SCRIPT",
    "locked",
    "KILLED_BY_TIMEOUT",
    "LOCK_BUSY",
    "DAEMON_DIED",
    "DAEMON_SLOW",
    "FOREIGN_DAEMON",
    "NEEDS_APPROVAL",
    "LOCK_WAIT",
    "DAEMON_RUNS",
    "OLD_KEPT",
    "STOPPED",
]

# Shell functions every in-container script starts with. POSIX sh only, and only
# what a BusyBox userland (Alpine) has too: /bin/sh may be BusyBox ash, no procps
# (tailscaled is found by scanning /proc). coreutils' `timeout` is used when present;
# BusyBox's leaves a process for PID 1 to reap (a zombie where PID 1 is no init), so
# elsewhere the command and a watcher (SIGTERM at the deadline: 143, reported as 124)
# run as this shell's children, both waited for.
SH_LIB = r"""
S=%(socket)s
to=$(command -v timeout 2>/dev/null)
tf=
if [ -n "$to" ]; then
  case "$("$to" --version 2>/dev/null)" in
    *coreutils*) tf=gnu ;;
  esac
fi
# pids of live tailscaled processes (zombies excluded); read with the shell's own `read`:
# a process started per /proc entry would cost more than the rest of a probe
ts_pids() {
  for d in /proc/[0-9]*; do
    tsp_comm=; read -r tsp_comm 2>/dev/null <"$d/comm"
    [ "$tsp_comm" = tailscaled ] || continue
    tsp_state=; read -r tsp_x tsp_x tsp_state tsp_x 2>/dev/null <"$d/stat"
    case $tsp_state in Z|X|"") continue ;; esac
    echo "${d#/proc/}"
  done
}
# a command bounded by $1 seconds when the image has a `timeout`; 124 when it ran out
bounded() {
  n=$1; shift
  if [ "$tf" = gnu ]; then "$to" "$n" "$@"; return; fi
  b_end=$(( $(date +%%s) + n )); exec 4<&0
  "$@" <&4 4<&- & b_cmd=$!; exec 4<&-
  ( while kill -0 "$b_cmd" 2>/dev/null; do
      if [ "$(date +%%s)" -ge "$b_end" ]; then kill "$b_cmd" 2>/dev/null; break; fi
      sleep 0.05 2>/dev/null || sleep 1
    done ) </dev/null & b_w=$!
  wait "$b_cmd"; rc=$?; wait "$b_w"
  [ "$rc" = 143 ] && return 124; return "$rc"
}
# stop every tailscaled: SIGTERM, SIGKILL after 10 s; fails if one survives
stop_tailscaled() {
  pids=$(ts_pids)
  [ -n "$pids" ] || return 0
  kill $pids 2>/dev/null
  i=0
  while [ -n "$(ts_pids)" ]; do
    i=$((i + 1))
    if [ "$i" -ge 100 ]; then kill -9 $(ts_pids) 2>/dev/null; sleep 0.2; break; fi
    sleep 0.1
  done
  [ -z "$(ts_pids)" ] || { echo "tailscaled (pid $(ts_pids)) did not stop" >&2; return 1; }
}
""" % {"socket": SOCKET}

# One exec that tells everything `up`, `status` and `doctor` need, with one CLI call
# (`status --json`) unless the arguments ask for `prefs` (`debug prefs`: `up`) or `version`
# (`doctor`). A script that changes the node ends with PROBE_BODY (after AFTER_MARK).
PROBE_BODY = r"""
echo "devc-probe=1"
if [ -c /dev/net/tun ]; then echo tun=1; else echo tun=0; fi
ts=$(command -v tailscale 2>/dev/null)
d=$(command -v tailscaled 2>/dev/null)
for p in /usr/sbin/tailscaled /usr/local/sbin/tailscaled /usr/bin/tailscaled; do
  if [ -z "$d" ] && [ -x "$p" ]; then d=$p; fi
done
echo "tailscale=$ts"
echo "tailscaled=$d"
daemon_pid=; for p in $(ts_pids); do daemon_pid=$p; break; done
echo "daemon_pid=$daemon_pid"
if [ -S "$S" ]; then echo socket=1; else echo socket=0; fi
if [ -s %(state)s ]; then echo state=1; else echo state=0; fi
# this shell's effective capabilities and uid (the shell's own `read`: no process)
capeff= uid=
while read -r k v1 v2 v3; do
  case $k in CapEff:) capeff=$v1 ;; Uid:) uid=$v2 ;; esac
done 2>/dev/null </proc/self/status
echo "capeff=$capeff"
echo "uid=$uid"
rc=1
if [ -n "$ts" ] && [ -S "$S" ]; then
  if [ "$want_prefs" = 1 ]; then
    # both CLI calls at once (each is a process start): `debug prefs` writes first, in
    # the background; the status follows once both are done, after its exit code
    both=$(
      bounded 10 "$ts" --socket="$S" debug prefs 2>/dev/null &
      st=$(bounded 10 "$ts" --socket="$S" status --json 2>&1); rc=$?
      wait
      printf '\n%%s\n%%s\n' "devc-status-rc=$rc" "$st"
    )
    pr=${both%%%%devc-status-rc=*} rest=${both#*devc-status-rc=}
    rc=${rest%%%%[!0-9]*}; st=${rest#"$rc"}; st=${st#?}
  else
    st=$(bounded 10 "$ts" --socket="$S" status --json 2>&1); rc=$?
  fi
  echo "status_rc=$rc"
  echo "--- status"
  printf '%%s\n' "$st"
  if [ "$rc" = 0 ] && [ "$want_prefs" = 1 ]; then
    echo "--- prefs"
    printf '%%s\n' "$pr"
  fi
fi
# the CLI's own version (the daemon's is in the status; they can differ)
if [ -n "$ts" ] && [ "$want_version" = 1 ]; then echo "--- version"; bounded 5 "$ts" version 2>/dev/null | head -n 1; fi
# the state file with every value blanked (values hold private keys and never leave the
# container), and the two values that decide whether it holds an identity, decoded; not
# needed when the daemon answered that it has a node key (see Probe.has_identity); not a
# file far larger than tailscaled writes (its size is reported instead)
known=; if [ "$rc" = 0 ]; then case $st in *'"HaveNodeKey": true'*) known=1 ;; esac; fi
state_size=0; if [ -z "$known" ] && [ -s %(state)s ]; then state_size=$(( $(wc -c < %(state)s) )); fi
if [ "$state_size" -gt %(state_max)d ]; then echo "--- state_size"; echo "$state_size"; fi
if [ -z "$known" ] && [ -s %(state)s ] && [ "$state_size" -le %(state_max)d ]; then
  echo "--- state"
  sed -e 's/"\([^"]*\)":[[:space:]]*"[^"]*"/"\1": ""/g' -e 's/":[[:space:]]*"[^"]*$/": "/' %(state)s
  echo
  if command -v base64 >/dev/null 2>&1; then
    echo "--- state_current"
    sed -n 's/.*"_current-profile":[[:space:]]*"\([^"]*\)".*/\1/p' %(state)s | base64 -d 2>/dev/null
    echo
    echo "--- state_profiles"
    sed -n 's/.*"_profiles":[[:space:]]*"\([^"]*\)".*/\1/p' %(state)s | base64 -d 2>/dev/null
    echo
  fi
fi
echo "--- end"
""" % {"state": STATE_FILE, "state_max": STATE_MAX_BYTES}
PROBE_SCRIPT = SH_LIB + r"""
want_prefs=0 want_version=0
for w in "$@"; do case $w in prefs) want_prefs=1 ;; version) want_version=1 ;; esac; done
""" + PROBE_BODY
AFTER_MARK = "--- devc-tasks: the node after this step"


# Exit codes of our own scripts (not tailscale's); 124 is coreutils `timeout`'s.
KILLED_BY_TIMEOUT = 124
LOCK_BUSY = 75
DAEMON_DIED = 76
DAEMON_SLOW = 77
FOREIGN_DAEMON = 78
NEEDS_APPROVAL = 79

# Every script starts with SH_LIB (ts_pids, bounded, $S) and, when it
# changes something, takes the lock; the lock dies with the script, and the
# script is bounded, so a lost host connection cannot leave it held. Only
# `flock -n FD` is used: it is what util-linux, BusyBox (`-sxun` only, no `-w`)
# and toybox share; the wait is a loop of non-blocking tries bounded by
# $DEVC_LOCK_WAIT. A failure other than "held by another" (flock prints why)
# is reported as it is, never as a busy lock.
LOCK = r"""
if command -v flock >/dev/null 2>&1; then
  exec 9>%(lock)s
  lock_end=$(( $(date +%%s) + ${DEVC_LOCK_WAIT:-30} ))
  while :; do
    lock_err=$(flock -n 9 2>&1) && break
    if [ -n "$lock_err" ]; then echo "devc-tasks: flock failed: $lock_err" >&2; exit 1; fi
    [ "$(date +%%s)" -lt "$lock_end" ] || { echo "devc-tasks: another command still holds %(lock)s" >&2; exit %(busy)d; }
    sleep 0.2 2>/dev/null || sleep 1
  done
fi
""" % {"lock": LOCK_FILE, "busy": LOCK_BUSY}

# Run by a step's script once it succeeded: the next probe in the same exec (one exec less
# after Running); without `debug prefs` when DEVC_AFTER_PREFS=0 (after an `up` that named
# every managed setting, the settings are what it set).
PROBE_AFTER = r"""
want_prefs=${DEVC_AFTER_PREFS:-1} want_version=0
echo "%(mark)s"
""" % {"mark": AFTER_MARK} + PROBE_BODY + "exit 0\n"

# `tailscale up` under the lock; a login first checks, under the lock, whether
# another `up` already connected the node (then the key is not used). The key, when there is one, is the
# first line of stdin (read by `head`, so no half-close of the stream is needed).
# `up` returns at Running (it follows the IPN bus); `wait` on it returns as soon as it does.
UP_SCRIPT = SH_LIB + LOCK + r"""
if [ "$DEVC_KEY_ON_STDIN" = 1 ] && bounded 10 "$1" --socket="$S" status --json --peers=false 2>/dev/null | grep -q '"BackendState": "Running"'; then
  echo "devc-tasks: already Running (another up connected it)" >&2
  exit 0
fi
if [ "$DEVC_KEY_ON_STDIN" = 1 ]; then
  # `up` waits on, silently for us, while the node needs an admin's approval: a watcher
  # beside it stops it when the backend state says NeedsMachineAuth (its output goes
  # nowhere, so it never holds the exec's streams open)
  exec 3<&0
  head -n 1 <&3 | bounded "$DEVC_BOUND" "$@" &
  up=$!
  exec 3<&-
  # stopped by TERM, it stops and reaps its own sleep: no orphan for a PID 1 that is no init
  ( trap 'kill "$s" 2>/dev/null; wait "$s"; exit 0' TERM
    while sleep 0.5 & s=$!; wait "$s"; do
      if bounded 5 "$1" --socket="$S" status --json --peers=false 2>/dev/null | grep -q '"BackendState": "NeedsMachineAuth"'; then
        kill "$up" 2>/dev/null; exit 0
      fi
    done ) </dev/null >/dev/null 2>&1 &
  watcher=$!
  wait "$up"; rc=$?
  kill "$watcher" 2>/dev/null; wait "$watcher"
  if [ "$rc" != 0 ] && bounded 5 "$1" --socket="$S" status --json --peers=false 2>/dev/null | grep -q '"BackendState": "NeedsMachineAuth"'; then
    exit %(approval)d
  fi
else
  bounded "$DEVC_BOUND" "$@" </dev/null
  rc=$?
fi
[ "$rc" = 0 ] || exit "$rc"
""" % {"approval": NEEDS_APPROVAL} + PROBE_AFTER

# Starts tailscaled detached unless it runs, waits (wall clock) for it to answer, then probes.
START_DAEMON_SCRIPT = SH_LIB + LOCK + r"""
mkdir -p %(state_dir)s /var/run/tailscale "$(dirname %(log)s)"
pid=
if [ -z "$(ts_pids)" ]; then
  echo "--- devc-tasks: starting $* ($(date -u +%%FT%%TZ))" >>%(log)s
  if command -v setsid >/dev/null 2>&1; then
    setsid "$@" >>%(log)s 2>&1 </dev/null 9>&- &
  else
    nohup "$@" >>%(log)s 2>&1 </dev/null 9>&- &
  fi
  pid=$!
fi
# alive: a tailscaled process, or the one we started while it is still exec'ing
alive() { [ -n "$(ts_pids)" ] || { [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }; }
start=$(date +%%s)
end=$(( start + DEVC_WAIT ))
ok=
while [ "$(date +%%s)" -lt "$end" ]; do
  if [ -S "$S" ] && bounded 5 "$DEVC_CLI" --socket="$S" status --json --peers=false >/dev/null 2>&1; then ok=1; break; fi
  if [ -z "$pid" ] && [ ! -S "$S" ] && [ "$(date +%%s)" -ge $(( start + 5 )) ]; then
    # a tailscaled we did not start, and no socket where the CLI looks: another --socket
    for p in $(ts_pids); do echo "pid $p: $(tr '\0' ' ' < /proc/$p/cmdline)" >&2; done
    exit %(foreign)d
  fi
  if ! alive; then
    sleep 0.2
    if ! alive; then
      tail -n 15 %(log)s >&2
      exit %(died)d
    fi
  fi
  sleep 0.1
done
[ -n "$ok" ] || { tail -n 15 %(log)s >&2; exit %(slow)d; }
""" % {"state_dir": STATE_DIR, "log": DAEMON_LOG, "died": DAEMON_DIED, "slow": DAEMON_SLOW, "foreign": FOREIGN_DAEMON} + PROBE_AFTER

# Polls (wall clock) until the backend is Running, then probes.
WAIT_RUNNING_SCRIPT = SH_LIB + r"""
end=$(( $(date +%%s) + DEVC_WAIT ))
ok=
while [ "$(date +%%s)" -lt "$end" ]; do
  if bounded 5 "$DEVC_CLI" --socket="$S" status --json --peers=false 2>/dev/null | grep -q '"BackendState": "Running"'; then ok=1; break; fi
  sleep 0.05
done
[ -n "$ok" ] || exit %(slow)d
""" % {"slow": DAEMON_SLOW} + PROBE_AFTER

# Stops tailscaled (SIGTERM, then SIGKILL after 10 s), under the lock.
STOP_DAEMON_SCRIPT = SH_LIB + LOCK + "stop_tailscaled\n"


LOCK_WAIT = 30
DAEMON_RUNS = 3
OLD_KEPT = 4
STOPPED = "devc-stopped"


def locked(body: str) -> str:
    """``body`` after SH_LIB, holding the lock `up` takes (``LOCK``): no `up` can
    start tailscaled while it runs. Exits 75 (``LOCK_BUSY``) when the lock stays taken."""
    return SH_LIB + f"DEVC_LOCK_WAIT={LOCK_WAIT}\n" + LOCK + body


# Stops every tailscaled (SIGTERM, SIGKILL after 10 s) when $STOP is 1, saying so
# on stdout; with STOP=0 a running one means another command started it: exit 3.
STOP_ALL = r"""
if [ -n "$(ts_pids)" ]; then
  [ "$STOP" = 1 ] || { echo "tailscaled is running (started meanwhile?)" >&2; exit %(runs)d; }
  echo %(stopped)s
  stop_tailscaled || exit 1
fi
""" % {"runs": DAEMON_RUNS, "stopped": STOPPED}

# Under the lock: stops tailscaled, then swaps the staged copy in by renames
# only (same filesystem): the old entries move aside to $T.old, the staged ones
# move up. If a rename fails, the old entries are put back: the identity that
# was there is never lost half-way. If putting them back fails too, $T.old is
# kept (never deleted: it may hold the only copy of the identity), its path
# printed as devc-kept=..., and the script exits 4 (OLD_KEPT).
SWAP_SCRIPT = "D=$1; T=$2; STOP=$3\n" + STOP_ALL + r"""
O="$T.old"
rm -rf "$O" && mkdir "$O" || exit 1
entries() {
  for e in "$1"/* "$1"/.[!.]* "$1"/..?*; do
    { [ -e "$e" ] || [ -L "$e" ]; } && [ "$e" != "$T" ] && [ "$e" != "$O" ] && printf '%%s\n' "$e"
  done
  return 0
}
phase=1
if entries "$D" | while IFS= read -r e; do mv "$e" "$O"/ || exit 1; done; then
  phase=2
  if entries "$T" | while IFS= read -r e; do mv "$e" "$D"/ || exit 1; done; then
    rmdir "$T" && rm -rf "$O"
    chmod %(dir_mode)s "$D"
    exit 0
  fi
fi
if [ "$phase" = 2 ]; then entries "$D" | while IFS= read -r e; do rm -rf "$e"; done; fi
# put back; never over (or into) an entry of the same name
if entries "$O" | while IFS= read -r e; do
     n="$D/${e##*/}"; { [ -e "$n" ] || [ -L "$n" ]; } && exit 1; mv "$e" "$D"/ || exit 1
   done && rmdir "$O"; then
  echo "the swap failed; the previous state is back in place" >&2
  exit 1
fi
echo "devc-kept=$O"
echo "the swap failed and the previous state could not all be put back" >&2
exit %(kept)d
""" % {"dir_mode": format(DIR_MODE, "o"), "kept": OLD_KEPT}

# Under the lock (so after any swap still running): after a failed restore, the
# staged copy goes; $T.old goes only when empty, else it is kept and reported.
AFTER_FAILED_SWAP_SCRIPT = r"""
T=$1; O="$1.old"
rm -rf "$T"
if [ -d "$O" ] && ! rmdir "$O" 2>/dev/null; then echo "devc-kept=$O"; fi
exit 0
"""


PRESENT_SCRIPT = r"""
if [ ! -d "$1" ]; then echo missing; elif [ -n "$(find "$1" -mindepth 1 | head -n 1)" ]; then echo files; else echo empty; fi
"""

# Under the lock: stops tailscaled, then empties the state directory (when there is one).
EMPTY_SCRIPT = "D=$1; STOP=1\n" + STOP_ALL + r"""
set -e
[ -d "$D" ] || exit 0
n=$(find "$D" -mindepth 1 | wc -l)
# rm per top entry, not `find -delete`: BusyBox find may lack -delete
for e in "$D"/* "$D"/.[!.]* "$D"/..?*; do
  if [ -e "$e" ] || [ -L "$e" ]; then rm -rf "$e"; fi
done
left=$(find "$D" -mindepth 1 | head -n 1)
if [ -n "$left" ]; then echo "still there: $left" >&2; exit 1; fi
echo "removed=$n"
"""
