#!/usr/bin/env bash
# Throwaway single-node Ceph cluster (mon + one memstore OSD + radosgw) that gives tests a
# real S3 server. See /work/shared/TESTING.md, "S3: use Ceph radosgw".
#
#   scripts/radosgw.sh start DIR PORT   # S3 on http://127.0.0.1:PORT, ready when this exits 0
#   scripts/radosgw.sh stop DIR         # kill every daemon of that cluster, remove DIR
#
# Ports (127.0.0.1 only): PORT radosgw (beast), PORT+1 mon (msgr2), PORT+2..PORT+9 OSD
# messengers (it binds four). Everything (config, maps, logs, pid files, admin sockets) lives
# in DIR; /etc/ceph is never read. No systemd; works as root.
# S3 user: uid=test, access key tusflow-test-key, secret tusflow-test-secret.
#
# Env:
#   MEMSTORE_BYTES         OSD capacity, all of it RAM (default 8 GiB; RSS follows data held)
#   RADOSGW_START_TIMEOUT  seconds before start gives up (default 60)
#   RADOSGW_OWNER_PID      if set, a watchdog stops the cluster within a second of that process
#                          ending in any way (SIGKILL, or a runner that emits no exit event:
#                          `bun test` runs no process.on('exit') handler). The watchdog is
#                          self-contained: it works on after this script or its checkout is gone.
#
# stdout stays empty; progress and errors go to stderr. On a failed start every daemon
# already started is killed and DIR is kept for its logs (DIR/log); `stop DIR` removes it.
set -euo pipefail

ACCESS_KEY=tusflow-test-key
SECRET_KEY=tusflow-test-secret

T0=${EPOCHREALTIME/[.,]/}
# log MSG: progress line on stderr, prefixed with the seconds since this script started
log() {
  local us=$((${EPOCHREALTIME/[.,]/} - T0))
  printf 'radosgw.sh: [%d.%02ds] %s\n' $((us / 1000000)) $((us % 1000000 / 10000)) "$*" >&2
}
die() {
  echo "radosgw.sh: error: $*" >&2
  exit 1
}
usage() { die "usage: $0 start DIR PORT | $0 stop DIR"; }

require() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 ||
      die "'$c' not found; install Ceph: apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd"
  done
}

# cluster_pids DIR: pids from DIR/pids/*.pid that are alive and really belong to this cluster
# (their command line names DIR), so a recycled pid is never killed.
cluster_pids() {
  local dir=$1 f pid
  for f in "$dir"/pids/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    [[ $pid =~ ^[0-9]+$ ]] && [ "$pid" != $$ ] || continue # $$: the watchdog stops the cluster itself
    { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$dir" || continue
    echo "$pid"
  done
}

# kill_cluster DIR: SIGKILL every daemon of the cluster and wait (bounded) until they are gone.
# SIGKILL on purpose: the data is thrown away anyway, and a memstore OSD told to shut down
# cleanly would first write all it holds (up to MEMSTORE_BYTES) to DIR.
kill_cluster() {
  local dir=$1 pids i pid alive
  pids=$(cluster_pids "$dir")
  [ -n "$pids" ] || return 0
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    alive=0
    for pid in $pids; do
      # a killed child of ours stays a zombie until reaped; count it as gone
      if [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then alive=1; fi
    done
    [ $alive = 0 ] && return 0
    sleep 0.05
  done
  log "warning: some daemons of $dir survived SIGKILL: $pids"
}

# proc_start PID: when the process started (field 22 of /proc/PID/stat, clock ticks since boot);
# empty if there is no such process. With the pid it names one process, even after pid reuse.
proc_start() {
  local stat f
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 0
  read -ra f <<<"${stat##*) }" # fields from the 3rd (state) on; the name may hold spaces
  echo "${f[19]}"
}

# owner_alive PID START: true while that process runs; a zombie (exited, not yet reaped by its
# parent) or a new process under a recycled pid counts as gone.
owner_alive() {
  local stat f
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  read -ra f <<<"${stat##*) }"
  [[ ${f[0]} != [ZX] && ${f[19]} == "$2" ]]
}

# watchdog OWNER START DIR: waits until the owner is gone, then kills the cluster and removes DIR.
# Runs from `bash -c` with these functions inlined, in its own session with its output in DIR/log:
# it needs no file outside DIR (the owner's checkout may be deleted the moment the owner ends),
# works from / (its start directory may be deleted too) and ignores hangups, interrupts and broken
# pipes of the owner's terminal or session. `stop` and a failed start end it with SIGKILL.
watchdog() {
  local owner=$1 start=$2 dir=$3
  trap '' HUP INT PIPE
  cd / || true
  while owner_alive "$owner" "$start" && [ -f "$dir/ceph.conf" ]; do sleep 0.25; done
  [ -f "$dir/ceph.conf" ] || return 0
  log "watchdog: owner $owner is gone; stopping the cluster in $dir"
  kill_cluster "$dir"
  rm -rf -- "$dir"
}

cmd_stop() {
  local dir=${1:-}
  [ -n "$dir" ] || usage
  if [ ! -e "$dir" ]; then
    log "stop: $dir does not exist, nothing to do"
    return 0
  fi
  dir=$(cd "$dir" && pwd)
  [ -f "$dir/ceph.conf" ] || [ -d "$dir/pids" ] ||
    die "stop: $dir does not look like a cluster made by this script (no ceph.conf); not removing it"
  kill_cluster "$dir"
  rm -rf -- "$dir"
  log "stopped, $dir removed"
}

# http_answers PORT: true once something on 127.0.0.1:PORT answers an HTTP request.
http_answers() {
  timeout 2 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3
    IFS= read -r line <&3 || exit 1
    [[ $line == HTTP/* ]]' _ "$1" 2>/dev/null
}

# spawn NAME CMD...: run a daemon in the foreground (-f) as a background job in its own
# session (so a Ctrl-C meant for the test runner does not reach it), output to DIR/log,
# pid in DIR/pids/NAME.pid. The background subshell is no process-group leader, so setsid
# execs without forking and $! is the daemon's own pid.
spawn() {
  local name=$1
  shift
  setsid "$@" </dev/null >>"$DIR/log/$name.out" 2>&1 &
  echo $! >"$DIR/pids/$name.pid"
  disown $!
}

alive_or_die() {
  local p pid
  for p in "$@"; do
    pid=$(cat "$DIR/pids/$p.pid")
    if ! kill -0 "$pid" 2>/dev/null || grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
      die "$p exited during start; last lines of its log:
$(tail -n 15 "$DIR/log/$p.log" "$DIR/log/$p.out" 2>/dev/null)"
    fi
  done
}

cmd_start() {
  local dir=${1:-} port=${2:-}
  [ -n "$dir" ] && [ -n "$port" ] || usage
  [[ $port =~ ^[0-9]+$ ]] && [ "$port" -ge 1024 ] && [ "$port" -le 65526 ] ||
    die "PORT must be a number in 1024..65526 (PORT..PORT+9 are used), got '$port'"
  require ceph-authtool monmaptool ceph-mon ceph-osd radosgw radosgw-admin ceph timeout setsid

  local timeout=${RADOSGW_START_TIMEOUT:-60}
  local memstore_bytes=${MEMSTORE_BYTES:-$((8 * 1024 * 1024 * 1024))}
  [[ $timeout =~ ^[0-9]+$ ]] || die "RADOSGW_START_TIMEOUT must be whole seconds, got '$timeout'"
  [[ $memstore_bytes =~ ^[0-9]+$ ]] || die "MEMSTORE_BYTES must be a number of bytes, got '$memstore_bytes'"
  local mon_port=$((port + 1)) bind_min=$((port + 2)) bind_max=$((port + 9))

  local p
  for p in "$port" "$mon_port"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      die "127.0.0.1:$p is already in use (this cluster needs ports $port..$bind_max)"
    fi
  done

  if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    die "$dir exists and is not empty"
  fi
  mkdir -p "$dir"
  DIR=$(cd "$dir" && pwd)
  mkdir -p "$DIR"/{mon,osd/osd.0,rgw,run,log,pids,crash}

  local t0=$SECONDS
  # Any failure from here on: kill what was started, keep DIR for its logs.
  trap 'rc=$?; if [ $rc != 0 ]; then kill_cluster "$DIR"; log "start failed; logs kept in $DIR/log (remove with: $0 stop $DIR)"; fi' EXIT
  local deadline=$((t0 + timeout))

  local fsid osd_uuid
  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)

  cat >"$DIR/ceph.conf" <<EOF
# throwaway test cluster made by scripts/radosgw.sh
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_port]
public addr = 127.0.0.1
public network = 127.0.0.0/8
ms bind msgr1 = false
ms bind msgr2 = true
ms bind ipv6 = false
ms bind port min = $bind_min
ms bind port max = $bind_max
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
# without crc modes radosgw loops on an auth error (-13)
ms mon client mode = crc
ms client mode = crc
ms mon cluster mode = crc
ms cluster mode = crc
ms mon service mode = crc
ms service mode = crc
keyring = $DIR/keyring
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
log to stderr = false
err to stderr = false
log to syslog = false
crash dir = $DIR/crash
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool delete = true
# Start-up speed: the mon batches map changes for paxos_propose_interval (1 s by default),
# and radosgw's first start needs ~15 osdmap epochs (its pools), which cost ~12 s.
paxos propose interval = 0.01
paxos min wait = 0.001
# a port already taken fails the start in ~1 s instead of 3 x 5 s
ms bind retry count = 1
ms bind retry delay = 1

[mon]
mon data = $DIR/mon/\$name

[osd]
osd data = $DIR/osd/\$name
osd objectstore = memstore
memstore device bytes = $memstore_bytes

[client]
rgw data = $DIR/rgw
rgw frontends = beast endpoint=127.0.0.1:$port tcp_nodelay=1
rgw gc obj min wait = 5
rgw gc processor period = 5
rgw gc processor max time = 5
# an op sent while no OSD is up waits for the objecter tick (5 s by default) to retry
objecter tick interval = 1
EOF
  export CEPH_CONF=$DIR/ceph.conf
  local conf=(-c "$DIR/ceph.conf")

  if [[ ${RADOSGW_OWNER_PID:-} =~ ^[0-9]+$ ]]; then
    # Watchdog: stops the cluster once the owner is gone (even mid-start, and then a daemon
    # spawned later fails for want of DIR/ceph.conf); it ends by itself once DIR/ceph.conf is
    # gone, and `stop` (or a failed start) kills it with the daemons. An owner already gone
    # has no start time, which stops the cluster at once.
    local owner_start watchdog_code
    owner_start=$(proc_start "$RADOSGW_OWNER_PID")
    watchdog_code="$(declare -f log cluster_pids kill_cluster owner_alive watchdog)"$'\n''T0=${EPOCHREALTIME/[.,]/}; watchdog "$@"'
    spawn watchdog bash -c "$watchdog_code" watchdog "$RADOSGW_OWNER_PID" "$owner_start" "$DIR"
  fi

  log "starting mon a on 127.0.0.1:$mon_port (fsid $fsid) in $DIR"
  ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$DIR/monmap" >/dev/null
  ceph-mon "${conf[@]}" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring" >"$DIR/log/mon.a.mkfs.out" 2>&1 ||
    die "ceph-mon --mkfs failed: $(tail -n 5 "$DIR/log/mon.a.mkfs.out")"
  spawn mon.a ceph-mon "${conf[@]}" -f -i a

  log "mon started; creating osd.0 (memstore, $memstore_bytes bytes)"
  local osd_id
  osd_id=$(timeout "$timeout" ceph "${conf[@]}" --connect-timeout "$timeout" osd new "$osd_uuid" 2>"$DIR/log/osd-new.err") || {
    alive_or_die mon.a
    die "'ceph osd new' failed: $(cat "$DIR/log/osd-new.err")"
  }
  [ "$osd_id" = 0 ] || die "'ceph osd new' gave id '$osd_id', expected 0"
  ceph-osd "${conf[@]}" --mkfs -i 0 --osd-uuid "$osd_uuid" >"$DIR/log/osd.0.mkfs.out" 2>&1 ||
    die "ceph-osd --mkfs failed: $(tail -n 5 "$DIR/log/osd.0.mkfs.out")"
  log "starting osd.0"
  spawn osd.0 ceph-osd "${conf[@]}" -f -i 0

  # Start radosgw only once the OSD is up: ops it sends before that wait for a later map.
  until grep -q 'state: booting -> active' "$DIR/log/osd.0.log" 2>/dev/null; do
    alive_or_die mon.a osd.0
    [ $SECONDS -lt $deadline ] || die "osd.0 did not come up within ${timeout}s; see $DIR/log/osd.0.log"
    sleep 0.05
  done

  log "osd.0 is up; starting radosgw on 127.0.0.1:$port"
  spawn client.rgw.a radosgw "${conf[@]}" -f -n client.rgw.a
  until http_answers "$port"; do
    alive_or_die mon.a osd.0 client.rgw.a
    [ $SECONDS -lt $deadline ] || die "radosgw did not answer on 127.0.0.1:$port within ${timeout}s; see $DIR/log/client.rgw.a.log"
    sleep 0.1
  done

  log "radosgw answers; creating S3 user test"
  timeout "$((deadline > SECONDS ? deadline - SECONDS + 5 : 5))" radosgw-admin "${conf[@]}" user create \
    --uid=test --display-name=test --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" \
    >"$DIR/log/user-create.out" 2>&1 ||
    die "radosgw-admin user create failed: $(tail -n 5 "$DIR/log/user-create.out")"

  log "ready: http://127.0.0.1:$port (access key $ACCESS_KEY)"
}

case ${1:-} in
start)
  shift
  cmd_start "$@"
  ;;
stop)
  shift
  cmd_stop "$@"
  ;;
*) usage ;;
esac
