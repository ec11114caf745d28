#!/bin/sh
# The local base image of runtime/Dockerfile (build arg PYTHON_IMAGE), for machines that reach Debian's
# package archive but no container registry: Debian bookworm's minimal system (debootstrap), its
# python3.11 and tini, imported into podman's store. The public python image stays the default base.
# Usage (as root): debian-base.sh <image name>   e.g. localhost/attrition-base:bookworm
set -eu
image="${1:?usage: debian-base.sh <image name>}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
# python3-venv: the build stage makes its virtualenvs with it. tini: the entry point's PID 1.
debootstrap --variant=minbase --include=python3,python3-venv,tini bookworm "$root" "$mirror"
chroot "$root" apt-get clean
# Only what runs: no package lists, documentation or translations in the base.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/usr/share/doc/* \
    "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
tar --numeric-owner -C "$root" -c . | podman import --change 'CMD ["/bin/sh"]' - "$image"
