#!/bin/bash
# Set up real container engines for qemu-cross-cc on Debian/Ubuntu, as root.
#
# Idempotent, and leaves alone what it finds already working:
#  - installs docker.io podman runc debootstrap qemu-user-static docker-registry
#    uidmap file sudo and the fixtures' tools (only the missing ones);
#  - writes /etc/containers/containers.conf (runtime runc, ulimits within the
#    hard limits) unless an admin's own file is there;
#  - starts dockerd when no docker daemon answers, and waits for it;
#  - mounts binfmt_misc and registers the qemu-user handlers that are missing;
#  - debootstraps a minbase bookworm and a minbase bullseye once (mirror read
#    from the apt sources at run time) and imports them as debian:12-slim and
#    debian:11-slim into docker and docker.io/library/debian:12-slim and
#    :11-slim into podman, where no such image exists;
#  - starts a local registry on 127.0.0.1 (port $QCC_REGISTRY_PORT, 5000);
#  - creates the unprivileged test user qcc-tester (docker group, subuid and
#    subgid ranges for rootless podman) with the base image in its storage;
#  - creates a second unprivileged user qcc-sudoer, outside the docker group
#    (the socket is out of its reach), whose only sudo right is the docker
#    client without a password (/etc/sudoers.d/qemu-cross-cc-tests): the
#    engine tests run `sudo -n docker` as that user.
set -eu

STATE=/var/lib/qemu-cross-cc-setup
TARBALL="$STATE/bookworm-minbase.tar"
REGISTRY_PORT="${QCC_REGISTRY_PORT:-5000}"
TEST_USER=qcc-tester
SUDO_TEST_USER=qcc-sudoer
SUDOERS_FILE=/etc/sudoers.d/qemu-cross-cc-tests
MARK="# written by qemu-cross-cc tests/setup-engines.sh"

say() { printf 'setup-engines: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (sudo $0)"
command -v apt-get >/dev/null || die "needs a Debian or Ubuntu machine (apt-get not found)"
mkdir -p "$STATE"

# --- packages -------------------------------------------------------------
# autoconf automake libtool cmake meson ninja-build pkgconf ccache: the build systems
# of the real-project fixtures (tests/fixtures/{libtool,cmake,meson}).
# distcc iproute2 openssh-server openssh-client: the scale-out tests (real
# distcc, servers on a private network of namespaces, distcc's ssh mode).
# gcc-aarch64-linux-gnu: the host-native cross compiler the tests and the
# benchmark compare with. sudo: the third engine, `sudo -n docker`.
# zsh fish groff-base: the CLI tests check the generated completion scripts
# (`zsh -n`, `fish -n`, fish's and bash's completion) and man pages (groff).
want="docker.io podman runc debootstrap qemu-user-static docker-registry uidmap file ca-certificates make gcc-aarch64-linux-gnu g++-aarch64-linux-gnu autoconf automake libtool cmake meson ninja-build pkgconf ccache distcc iproute2 openssh-server openssh-client sudo zsh fish groff-base"
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || want="$want debian-archive-keyring"
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    say "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing >/dev/null
fi

# --- podman configuration ---------------------------------------------------
conf=/etc/containers/containers.conf
if [ ! -e "$conf" ] || grep -q "^$MARK" "$conf"; then
    nofile=$(ulimit -Hn)
    nproc=$(ulimit -Hu)
    # conmon runs with at most 32768 processes: a higher default fails.
    [ "$nproc" = unlimited ] && nproc=32768
    [ "$nproc" -gt 32768 ] && nproc=32768
    [ "$nofile" = unlimited ] && nofile=1048576
    mkdir -p /etc/containers
    cat >"$conf.tmp" <<EOF
$MARK
# crun refuses this machine's hybrid cgroup layout; runc works.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
EOF
    mv "$conf.tmp" "$conf"
else
    say "keeping the existing $conf"
fi
# The local test registry speaks plain HTTP.
mkdir -p /etc/containers/registries.conf.d
cat >/etc/containers/registries.conf.d/qemu-cross-cc-test-registry.conf <<EOF
$MARK
[[registry]]
location = "127.0.0.1:$REGISTRY_PORT"
insecure = true
EOF

# --- dockerd -----------------------------------------------------------------
if ! docker version >/dev/null 2>&1; then
    say "starting dockerd"
    setsid dockerd >/var/log/qemu-cross-cc-dockerd.log 2>&1 </dev/null &
    i=0
    until docker version >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 120 ] || die "dockerd did not start; see /var/log/qemu-cross-cc-dockerd.log"
        sleep 0.5
    done
fi

# --- binfmt_misc ---------------------------------------------------------------
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null ||
        say "warning: cannot mount binfmt_misc; foreign binaries will need qemu-*-static explicitly"
fi
if [ -w /proc/sys/fs/binfmt_misc/register ]; then
    for conf in /usr/lib/binfmt.d/qemu-*.conf; do
        name=$(basename "$conf" .conf)
        [ -e "/proc/sys/fs/binfmt_misc/$name" ] && continue
        grep -v '^#' "$conf" | grep . >/proc/sys/fs/binfmt_misc/register 2>/dev/null ||
            say "warning: cannot register $name"
    done
fi

# --- base image -----------------------------------------------------------------
mirror() {
    uri=""
    if [ -r /etc/apt/sources.list.d/debian.sources ]; then
        uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" && $2 ~ /debian\/?$/ { print $2; exit }' /etc/apt/sources.list)
    fi
    printf '%s\n' "${QCC_DEBIAN_MIRROR:-${uri:-http://deb.debian.org/debian}}"
}
# base_tarball RELEASE: a minbase RELEASE debootstrapped once, as a tarball.
base_tarball() {
    rootfs="$STATE/$1-minbase" tarball="$STATE/$1-minbase.tar"
    if [ ! -s "$tarball" ]; then
        m=$(mirror)
        say "debootstrap $1 from $m (once)"
        rm -rf "$rootfs"
        debootstrap --variant=minbase "$1" "$rootfs" "$m" >"$STATE/debootstrap-$1.log" 2>&1 ||
            die "debootstrap $1 failed; see $STATE/debootstrap-$1.log"
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        tar -C "$rootfs" -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        rm -rf "$rootfs"
    fi
    chmod 644 "$tarball"
}
# import_base RELEASE TAG: the tarball as debian:TAG (docker) and
# docker.io/library/debian:TAG (podman), where no such image exists.
import_base() {
    if ! docker image inspect "debian:$2" >/dev/null 2>&1; then
        say "importing debian:$2 into docker"
        docker import --change 'CMD ["bash"]' "$STATE/$1-minbase.tar" "debian:$2" >/dev/null
    fi
    if ! podman image exists "docker.io/library/debian:$2"; then
        say "importing docker.io/library/debian:$2 into podman"
        podman import --change 'CMD ["bash"]' "$STATE/$1-minbase.tar" "docker.io/library/debian:$2" >/dev/null 2>&1
    fi
}
# bookworm for every target; bullseye for the glibc 2.31 floor.
base_tarball bookworm
base_tarball bullseye
import_base bookworm 12-slim
import_base bullseye 11-slim
podman run --rm --network none docker.io/library/debian:12-slim true ||
    die "podman cannot run a container; check $conf"

# --- local registry ----------------------------------------------------------------
registry_ok() {
    python3 - "$REGISTRY_PORT" <<'EOF' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:%s/v2/" % sys.argv[1], timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
}
if ! registry_ok; then
    say "starting a registry on 127.0.0.1:$REGISTRY_PORT"
    mkdir -p "$STATE/registry"
    cat >"$STATE/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REGISTRY_PORT
EOF
    setsid docker-registry serve "$STATE/registry.yml" >/var/log/qemu-cross-cc-registry.log 2>&1 </dev/null &
    i=0
    until registry_ok; do
        i=$((i + 1))
        [ $i -lt 60 ] || die "the registry did not start; see /var/log/qemu-cross-cc-registry.log"
        sleep 0.5
    done
fi

# --- unprivileged test user ------------------------------------------------------------
if ! id "$TEST_USER" >/dev/null 2>&1; then
    say "creating user $TEST_USER"
    useradd -m -s /bin/sh "$TEST_USER"
fi
getent group docker >/dev/null && usermod -aG docker "$TEST_USER"
grep -q "^$TEST_USER:" /etc/subuid || usermod --add-subuids 300000-365535 "$TEST_USER"
grep -q "^$TEST_USER:" /etc/subgid || usermod --add-subgids 300000-365535 "$TEST_USER"
as_tester() {
    uid=$(id -u "$TEST_USER")
    rt="/tmp/qcc-runtime-$uid"
    mkdir -p "$rt" && chown "$TEST_USER" "$rt" && chmod 700 "$rt"
    (cd / && runuser -u "$TEST_USER" -- env XDG_RUNTIME_DIR="$rt" HOME="$(getent passwd "$TEST_USER" | cut -d: -f6)" "$@")
}
# The runtime folder outlives a reboot when /tmp does, and with it the pid of
# rootless podman's pause process, which then names a dead process: podman
# refuses to work until it is reset.
if ! as_tester podman info >/dev/null 2>&1; then
    say "resetting $TEST_USER's rootless podman (stale pause process)"
    as_tester podman system migrate
fi
if ! as_tester podman image exists docker.io/library/debian:12-slim; then
    say "importing the base image into $TEST_USER's rootless podman"
    as_tester podman import --change 'CMD ["bash"]' "$TARBALL" docker.io/library/debian:12-slim >/dev/null
fi
as_tester podman run --rm --network none docker.io/library/debian:12-slim true ||
    die "rootless podman does not work for $TEST_USER"

# --- the user of sudo -n docker ---------------------------------------------------------
# It must not reach the docker socket itself (so that `docker version` fails
# and the tool falls to `sudo -n docker`), and may run the docker client
# through sudo without a password, nothing else. Its podman is not set up (no
# subuid range, no image), though `podman version` answers: the tests choose
# `--engine docker`.
if ! id "$SUDO_TEST_USER" >/dev/null 2>&1; then
    say "creating user $SUDO_TEST_USER"
    useradd -m -s /bin/sh "$SUDO_TEST_USER"
fi
if id -nG "$SUDO_TEST_USER" | tr ' ' '\n' | grep -qx docker; then
    say "taking $SUDO_TEST_USER out of the docker group"
    gpasswd -d "$SUDO_TEST_USER" docker >/dev/null
fi
# The docker client sudo runs: the first in sudo's secure_path (two clients
# may be installed, e.g. /usr/local/bin/docker and Debian's /usr/bin/docker).
sudo_docker() {
    spath=$(sudo -V | sed -n "s/^Value to override user's \$PATH with: //p")
    [ -n "$spath" ] || spath="$PATH"
    (PATH="$spath" && command -v docker)
}
docker_client=$(sudo_docker) || die "sudo finds no docker client in its secure_path"
sudoers_body="$MARK
# $SUDO_TEST_USER may run the docker client as root, without a password, and
# nothing else (the engine tests' \`sudo -n docker\`).
$SUDO_TEST_USER ALL=(root) NOPASSWD: $docker_client"
if [ ! -e "$SUDOERS_FILE" ] || grep -q "^$MARK" "$SUDOERS_FILE"; then
    if [ "$(cat "$SUDOERS_FILE" 2>/dev/null)" != "$sudoers_body" ]; then
        say "allowing $SUDO_TEST_USER to run $docker_client through sudo ($SUDOERS_FILE)"
        mkdir -p "$(dirname "$SUDOERS_FILE")"
        # sudo ignores names with a dot in /etc/sudoers.d: not read before mv.
        tmp=$(mktemp "$SUDOERS_FILE.XXXXXX")
        printf '%s\n' "$sudoers_body" >"$tmp"
        chmod 0440 "$tmp"
        visudo -cqf "$tmp" || { rm -f "$tmp"; die "visudo refused the rule for $SUDO_TEST_USER"; }
        mv "$tmp" "$SUDOERS_FILE"
    fi
else
    say "keeping the existing $SUDOERS_FILE"
fi
as_sudoer() { (cd / && runuser -u "$SUDO_TEST_USER" -- "$@"); }
as_sudoer sudo -n docker version >/dev/null 2>&1 ||
    die "$SUDO_TEST_USER cannot run sudo -n docker (does /etc/sudoers include /etc/sudoers.d?)"
! as_sudoer docker version >/dev/null 2>&1 ||
    die "$SUDO_TEST_USER reaches the docker socket without sudo"
! as_sudoer sudo -n true >/dev/null 2>&1 ||
    die "$SUDO_TEST_USER may run more than docker through sudo"

say "ready: docker $(docker version --format '{{.Server.Version}}'), podman $(podman version --format '{{.Client.Version}}'), registry 127.0.0.1:$REGISTRY_PORT"
