#!/usr/bin/env bash
# Provision what the test suite needs on a fresh Debian 12 machine (run as root):
# the Docker Engine (Debian's docker.io), Compose v2, the devcontainer CLI,
# debootstrap, busybox-static, OpenSSH server, Podman, and this project with its test extra. Idempotent: a second run
# reuses what is there. Starting the engine is separate: .ci/start-docker.sh.
set -euo pipefail
log() { printf '[provision %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

need_apt=()
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
# other engines the tests start themselves: an OpenSSH server in front of the
# engine (ssh://), rootful Podman (with catatonit for --init), openssl for TLS
# certificates, and the ssh client
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)
command -v podman >/dev/null 2>&1 || need_apt+=(podman)
command -v catatonit >/dev/null 2>&1 || need_apt+=(catatonit)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v unshare >/dev/null 2>&1 || need_apt+=(util-linux)
# jq: the README's worked script examples (tests/integration/test_readme_scripts.py)
command -v jq >/dev/null 2>&1 || need_apt+=(jq)
# the BusyBox test image copies the host's static busybox (tests/support/images.py)
[ -x /bin/busybox ] || need_apt+=(busybox-static)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# Compose v2: not in Debian 12. Debian 13's docker-compose package ships a
# static binary; fetch that one package with a private apt list directory so
# the system's sources stay untouched.
if ! docker compose version >/dev/null 2>&1; then
  log "installing Compose v2 from Debian 13's docker-compose package"
  tmp=$(mktemp -d)
  mkdir -p "$tmp/lists/partial" "$tmp/archives/partial"
  cat > "$tmp/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
SRC
  aptopts=(-o "Dir::Etc::sourcelist=$tmp/sources.list" -o "Dir::Etc::sourceparts=-"
           -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache::Archives=$tmp/archives"
           -o "APT::Get::List-Cleanup=0")
  apt-get "${aptopts[@]}" update -qq
  (cd "$tmp" && apt-get "${aptopts[@]}" download docker-compose >/dev/null)
  dpkg-deb -x "$tmp"/docker-compose_*.deb "$tmp/x"
  install -D -m 0755 "$tmp/x/usr/libexec/docker/cli-plugins/docker-compose" /usr/libexec/docker/cli-plugins/docker-compose
  mkdir -p /usr/local/lib/docker/cli-plugins
  ln -sf /usr/libexec/docker/cli-plugins/docker-compose /usr/local/lib/docker/cli-plugins/docker-compose
  rm -rf "$tmp"
fi

# Podman 4.3 as root refuses every container ("error setting rlimit type 7")
# while its default ulimits ask for more open files than the machine allows.
conf=/etc/containers/containers.conf
if ! grep -qs '^default_ulimits *= *\[\]' "$conf"; then
  log "podman: default_ulimits = [] in $conf"
  mkdir -p /etc/containers
  if grep -qs '^\[containers\]' "$conf"; then
    sed -i '/^\[containers\]/a default_ulimits = []' "$conf"
  else
    printf '[containers]\ndefault_ulimits = []\n' >> "$conf"
  fi
fi

if ! command -v devcontainer >/dev/null 2>&1; then
  log "npm install -g @devcontainers/cli"
  npm install -g --no-audit --no-fund @devcontainers/cli >/dev/null
fi

log "pip install -e .[test]"  # pytest, pytest-xdist (the suite runs on 3 workers), ruff, mypy, ...
python3 -m pip install -q --root-user-action=ignore -e '.[test]'
log "done"
