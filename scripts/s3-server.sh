#!/usr/bin/env bash
# A throwaway S3 endpoint for tests and development: a single-node Ceph cluster (one monitor, one
# OSD keeping its objects in memory, "memstore") behind radosgw, Ceph's S3 gateway. Loopback only,
# no authentication between the daemons; it answers S3 requests about 2 s after `start`.
#
#   scripts/s3-server.sh start [DIR]    DIR (else $PLI_S3_DIR) receives config, logs and PID files;
#                                       it must not exist yet, or be empty
#   scripts/s3-server.sh stop [DIR]     stops the daemons of that DIR and waits for them to exit
#
# `start` prints shell `export` lines (for `eval`): AWS_ENDPOINT_URL and AWS_REGION, and the keys
# when it made them up. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, when set, become the keys
# of the S3 user it creates. PLI_S3_PORT and PLI_S3_MON_PORT pick the ports (else free ones),
# PLI_S3_MEMORY caps the bytes memstore may hold (default 2 GiB): keep the objects small.
# Needs the Debian packages radosgw, ceph-mon, ceph-osd and ceph-common (scripts/system-deps.sh).
set -euo pipefail

usage() {
  echo "usage: $0 start|stop [DIR]   (or set PLI_S3_DIR)" >&2
  exit 2
}

[ $# -ge 1 ] || usage
command=$1
dir=${2:-${PLI_S3_DIR:-}}
[ -n "$dir" ] || usage

# A daemon of this DIR still running. One that exited but was not reaped (PID 1 may not reap
# here) is a zombie: not running. A PID since reused by another program is not ours.
running() {
  [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) Z ' "/proc/$1/stat" &&
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$dir/ceph.conf"
}

# Stops one daemon by its PID file: SIGTERM, up to 10 s to exit, then SIGKILL.
stop_daemon() {
  local file=$1 pid i
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if running "$pid"; then kill "$pid" 2>/dev/null || true; fi
  for i in $(seq 1 100); do
    running "$pid" || break
    sleep 0.1
  done
  if running "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -f "$file"
}

# The gateway first, the monitor last: a daemon whose peers are gone waits for them.
stop() {
  local file
  stop_daemon "$dir/run/client.rgw.pid"
  for file in "$dir"/run/osd.*.pid "$dir"/run/mon.*.pid "$dir"/run/*.pid; do
    stop_daemon "$file"
  done
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to $1 seconds for the command that follows to succeed.
wait_for() {
  local seconds=$1 i
  shift
  for i in $(seq 1 $((seconds * 10))); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}

# Fails start-up at once when the daemon of this PID file has exited.
alive() {
  local file=$dir/run/$1.pid
  if [ -f "$file" ] && ! running "$(cat "$file")"; then fail "$1 exited during start-up"; fi
}

osd_up() {
  alive osd.0
  ceph -c "$conf" --connect-timeout 10 osd dump 2>/dev/null | grep -q '^osd\.0 up'
}

gateway_answers() {
  local code
  alive client.rgw
  if grep -q 'failed to bind' "$dir/log/client.rgw.log" 2>/dev/null; then
    fail "radosgw could not listen on port $rgw_port"
  fi
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$endpoint/" || true)
  [ "$code" != "000" ]
}

fail() {
  echo "s3-server: $1 (logs in $dir/log)" >&2
  exit 1
}

# Whatever way `start` ends before the user exists, the daemons it started are stopped.
ready=no
cleanup() {
  if [ $ready = no ]; then stop; fi
}

case $command in
  stop)
    [ -d "$dir" ] || exit 0
    dir=$(cd "$dir" && pwd)
    stop
    exit 0
    ;;
  start) ;;
  *) usage ;;
esac

for tool in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool curl python3; do
  command -v "$tool" >/dev/null || {
    echo "s3-server: $tool is not installed: run scripts/system-deps.sh as root" >&2
    exit 1
  }
done
if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
  echo "s3-server: $dir is not empty: stop its server and remove it, or pick another" >&2
  exit 1
fi
mkdir -p "$dir"/{mon,osd,run,log,rgw}
dir=$(cd "$dir" && pwd)
conf=$dir/ceph.conf
mon_port=${PLI_S3_MON_PORT:-$(free_port)}
rgw_port=${PLI_S3_PORT:-$(free_port)}
endpoint=http://127.0.0.1:$rgw_port
fsid=$(cat /proc/sys/kernel/random/uuid)

cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
public addr = 127.0.0.1
ms bind ipv6 = false
# Without authentication, radosgw hangs unless the messenger modes are spelled out.
ms mon client mode = crc secure
ms client mode = crc secure
ms mon service mode = crc secure
ms mon cluster mode = crc secure
auth cluster required = none
auth service required = none
auth client required = none
keyring = /dev/null
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
mon cluster log file = $dir/log/cluster.log
crash dir = $dir/crash
# One OSD holds one copy of everything.
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon osd prime pg temp = false
mon data avail warn = 1
mon data avail crit = 0
# Short consensus rounds: the cluster is ready in seconds instead of ~20.
paxos propose interval = 0.05
paxos min wait = 0.01

[mon]
mon data = $dir/mon

[osd]
osd data = $dir/osd
osd objectstore = memstore
memstore device bytes = ${PLI_S3_MEMORY:-2147483648}
osd op num shards = 2
osd op num threads per shard = 1

[client.rgw]
rgw data = $dir/rgw
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw thread pool size = 32
# Deleted objects are freed within seconds, not hours: memstore holds them in RAM until then.
rgw gc obj min wait = 2
rgw gc processor period = 5
EOF

trap cleanup EXIT

monmaptool --create --fsid "$fsid" --addv mon "[v2:127.0.0.1:$mon_port]" "$dir/monmap" \
  >/dev/null 2>>"$dir/log/setup.log"
ceph-mon -c "$conf" -i mon --mkfs --monmap "$dir/monmap" 2>>"$dir/log/setup.log"
ceph-mon -c "$conf" -i mon 2>>"$dir/log/setup.log"

osd_uuid=$(cat /proc/sys/kernel/random/uuid)
osd_id=$(ceph -c "$conf" --connect-timeout 30 osd new "$osd_uuid" 2>>"$dir/log/setup.log")
[ "$osd_id" = 0 ] || fail "the monitor did not register the OSD"
ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$dir/log/setup.log" 2>&1
ceph -c "$conf" osd crush add osd.0 1.0 host=localhost root=default >/dev/null 2>&1 || true
ceph-osd -c "$conf" -i 0 2>>"$dir/log/setup.log"
wait_for 60 osd_up || fail "the OSD did not come up"

radosgw -c "$conf" -n client.rgw 2>>"$dir/log/setup.log"
wait_for 60 gateway_answers || fail "radosgw did not answer on $endpoint"

made_keys=no
if [ -z "${AWS_ACCESS_KEY_ID:-}" ] || [ -z "${AWS_SECRET_ACCESS_KEY:-}" ]; then
  AWS_ACCESS_KEY_ID=$(od -An -N10 -tx1 /dev/urandom | tr -d ' \n')
  AWS_SECRET_ACCESS_KEY=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
  made_keys=yes
fi
# The keys are on this command line for a moment: fine for a throwaway loopback cluster only.
radosgw-admin -c "$conf" user create --uid=pli --display-name=pli \
  --access-key="$AWS_ACCESS_KEY_ID" --secret-key="$AWS_SECRET_ACCESS_KEY" >/dev/null \
  2>>"$dir/log/setup.log" || fail "radosgw-admin could not create the S3 user"
ready=yes
printf 'export AWS_ENDPOINT_URL=%s\nexport AWS_REGION=us-east-1\n' "$endpoint"
if [ $made_keys = yes ]; then
  printf 'export AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=%s\n' \
    "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"
fi
