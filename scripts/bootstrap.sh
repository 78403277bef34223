#!/usr/bin/env bash
# Set up everything imageaudit needs on a Debian 12 machine. Safe to run again: each step
# checks before it installs. Usage: scripts/bootstrap.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
[[ "${1:-}" == "--test" ]] && want_tests=1

# Debian packages: libguestfs and the seccomp binding the direct VM reader confines itself
# with come from the distribution, never from PyPI.
debs=(python3 python3-venv python3-seccomp python3-guestfs libguestfs-tools libguestfs-xfs qemu-utils e2fsprogs xfsprogs
      fdisk lvm2 btrfs-progs libcrypt1 openssl "linux-image-$(dpkg --print-architecture)" gpgv
      debian-archive-keyring curl)
if (( want_tests )); then
    debs+=(mmdebstrap docker.io docker-registry dpkg-dev apt-utils chromium postgresql rpm db-util gpg gpg-agent
           git)
    # The SARIF test installs Microsoft's SARIF Multitool with npm; its .NET binary loads ICU.
    # A Node.js that brings its own npm (NodeSource's conflicts with Debian's npm) is kept.
    debs+=(libicu72)
    command -v npm >/dev/null || debs+=(nodejs npm)
fi
missing=()
for p in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
    echo "imageaudit: installing Debian packages: ${missing[*]}" >&2
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -q >&2
    # Through env: sudo drops DEBIAN_FRONTEND from the environment, and a debconf question
    # would then wait for an answer.
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >&2
fi

# A virtual environment on the system Python, so that the distribution's guestfs module is seen.
if [[ ! -x .venv/bin/python ]] || ! .venv/bin/python -c "import guestfs" 2>/dev/null; then
    rm -rf .venv
    /usr/bin/python3 -m venv --system-site-packages .venv
fi
extra=""
(( want_tests )) && extra="[test]"
stamp=".venv/.installed${extra}"
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" ]]; then
    .venv/bin/python -m pip install -q --upgrade pip >&2
    .venv/bin/python -m pip install -q -c constraints.txt -e ".${extra}" >&2
    touch "$stamp"
fi
