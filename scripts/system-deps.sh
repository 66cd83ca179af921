#!/usr/bin/env bash
# Installs the system tools the test suite drives for real: the reference `age` CLI and
# PostgreSQL's client tools (pg_dump, for the compromise drill). Debian/Ubuntu, as root.
set -euo pipefail
missing=()
command -v age >/dev/null || missing+=(age)
command -v pg_dump >/dev/null || missing+=(postgresql-client)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "please install: ${missing[*]} (Debian packages)" >&2
  exit 1
fi
echo "installing ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
