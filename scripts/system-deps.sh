#!/usr/bin/env bash
# Installs the system tools the test suite drives for real: the reference `age` CLI,
# PostgreSQL's client tools (pg_dump, for the compromise drill), Ceph's radosgw (S3), npm (the
# web app's build and the CCTV vectors) and Chromium (the web app's browser tests).
# Debian/Ubuntu, as root.
set -euo pipefail
missing=()
command -v age >/dev/null || missing+=(age)
command -v pg_dump >/dev/null || missing+=(postgresql-client)
# npm, which builds the web app (web/) and fetches the C2SP CCTV age vectors (tests/vectors/cctv)
command -v npm >/dev/null || missing+=(npm)
# Chromium, the browser the web app's tests drive (Playwright, tests/browser)
command -v chromium >/dev/null || missing+=(chromium)
# nginx (WebDAV) and curl: the references the benchmarks measure pli against.
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v curl >/dev/null || missing+=(curl)
# a single-node Ceph with its S3 gateway, for the S3 blob store's tests (scripts/s3-server.sh)
command -v radosgw >/dev/null || missing+=(radosgw)
command -v ceph-mon >/dev/null || missing+=(ceph-mon)
command -v ceph-osd >/dev/null || missing+=(ceph-osd)
command -v ceph >/dev/null || missing+=(ceph-common)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "please install: ${missing[*]} (Debian packages)" >&2
  exit 1
fi
echo "installing ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
