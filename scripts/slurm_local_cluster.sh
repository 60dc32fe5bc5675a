#!/usr/bin/env bash
# A single-node Slurm cluster on this machine (localhost only), for testing the cluster path:
#   scripts/slurm_local_cluster.sh start [--no-install]   install (apt-get) if needed, start munge + slurm
#   scripts/slurm_local_cluster.sh status                  exit 0 when the cluster answers
#   scripts/slurm_local_cluster.sh stop                    cancel its jobs, stop what start started
#   scripts/slurm_local_cluster.sh env                     print the export line its clients need
# Everything lives in one folder (SAR_SLURM_DIR, default /tmp/sar-landcover-slurm): slurm.conf,
# state, spool, logs, pid files. Nothing under /etc is written, so the clients (sbatch, srun,
# squeue, scontrol) need SLURM_CONF=$SAR_SLURM_DIR/slurm.conf (see `env`). Start is idempotent: a
# running cluster is left as it is; a half-running one is stopped and started again.
# No cgroups here: ProctrackType=proctrack/linuxproc, TaskPlugin=task/none. Run it as root.
set -euo pipefail

DIR=${SAR_SLURM_DIR:-/tmp/sar-landcover-slurm}
CONF=$DIR/slurm.conf
CTLD_PORT=${SAR_SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${SAR_SLURM_SLURMD_PORT:-6818}
MUNGE_SOCKET=/run/munge/munge.socket.2
export SLURM_CONF=$CONF

say() { echo "slurm_local_cluster: $*" >&2; }
fail() { say "$*"; exit 1; }

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
  local missing=()
  command -v munged >/dev/null || missing+=(munge)
  command -v slurmctld >/dev/null || missing+=(slurmctld)
  command -v slurmd >/dev/null || missing+=(slurmd)
  command -v sbatch >/dev/null || missing+=(slurm-client)
  ((${#missing[@]} == 0)) && return 0
  [[ ${1:-} == --no-install ]] && fail "not installed: ${missing[*]} (run without --no-install, as root, to apt-get them)"
  [[ $(id -u) == 0 ]] || fail "installing ${missing[*]} needs root (apt-get)"
  command -v apt-get >/dev/null || fail "installing ${missing[*]} needs apt-get (Debian/Ubuntu)"
  say "installing ${missing[*]} with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$DIR/apt.log" 2>&1 ||
    { apt-get update -qq >>"$DIR/apt.log" 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$DIR/apt.log" 2>&1; } ||
    fail "apt-get install ${missing[*]} failed; see $DIR/apt.log"
}

start_munge() {
  if [[ -S $MUNGE_SOCKET ]] && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    return 0  # a munged is already serving (ours or the machine's): use it
  fi
  if [[ ! -f /etc/munge/munge.key ]]; then
    say "creating /etc/munge/munge.key"
    mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null ||
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
  fi
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown munge:munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
  chmod 755 /run/munge
  rm -f /run/munge/munged.pid
  if id munge >/dev/null 2>&1; then
    runuser -u munge -- munged || fail "munged did not start (see /var/log/munge/munged.log)"
  else
    munged --force || fail "munged did not start (see /var/log/munge/munged.log)"
  fi
  for _ in $(seq 20); do
    [[ -s /run/munge/munged.pid ]] && break
    sleep 0.25
  done
  cp /run/munge/munged.pid "$DIR/munged.pid"  # its copy here says: started by this script, stopped by it
}

write_config() {
  local host node
  host=$(hostname -s)
  # The node line as slurmd sees the hardware (CPUs, sockets, cores, threads, memory): no mismatch, no drain.
  node=$(slurmd -C | head -n 1)
  node=${node#NodeName=* }
  cat >"$CONF.tmp" <<CONFIG
# Written by scripts/slurm_local_cluster.sh: a one-node cluster on localhost.
ClusterName=sar-landcover-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CryptoType=crypto/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
InactiveLimit=0
KillWait=10
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 $node State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONFIG
  mv "$CONF.tmp" "$CONF"
}

answers() { timeout 5 sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated|completing)'; }

cmd_status() {
  if alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" && answers; then
    say "running ($(sinfo -h -o '%N %T %c CPUs'))"
    return 0
  fi
  say "not running"
  return 1
}

cmd_start() {
  mkdir -p "$DIR/state" "$DIR/spool"
  if alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" && answers; then
    say "already running; $(cmd_env)"
    return 0
  fi
  if alive "$DIR/slurmctld.pid" || alive "$DIR/slurmd.pid"; then
    say "half running: restarting"
    cmd_stop
  fi
  local started=$SECONDS
  install_packages "${1:-}"
  start_munge
  write_config
  slurmctld -f "$CONF" || fail "slurmctld did not start; see $DIR/slurmctld.log"
  slurmd -f "$CONF" || fail "slurmd did not start; see $DIR/slurmd.log"
  for _ in $(seq 60); do
    answers && break
    sleep 1
  done
  answers || fail "the cluster did not come up within 60 s; see $DIR/slurmctld.log and $DIR/slurmd.log"
  scontrol update NodeName="$(hostname -s)" State=RESUME >/dev/null 2>&1 || true
  say "started in $((SECONDS - started)) s: $(sinfo -h -o '%N %T %c CPUs'); $(cmd_env)"
}

cmd_stop() {
  if alive "$DIR/slurmctld.pid"; then
    local jobs
    jobs=$(timeout 5 squeue -h -o %i 2>/dev/null || true)
    if [[ -n $jobs ]]; then
      say "cancelling jobs $(echo $jobs)"
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      for _ in $(seq 30); do
        [[ -z $(timeout 5 squeue -h -o %i 2>/dev/null) ]] && break
        sleep 1
      done
    fi
  fi
  local name pid
  for name in slurmd slurmctld munged; do
    if alive "$DIR/$name.pid"; then
      pid=$(cat "$DIR/$name.pid")
      kill "$pid"
      for _ in $(seq 20); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
      done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$DIR/$name.pid"
  done
  say "stopped"
}

cmd_env() { echo "export SLURM_CONF=$CONF"; }

case ${1:-} in
  start) shift; cmd_start "$@" ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 start [--no-install] | stop | status | env" >&2; exit 2 ;;
esac
