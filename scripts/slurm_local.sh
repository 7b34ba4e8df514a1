#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for trying the sweep's array
# jobs (experiments/slurm/regimes_sweep.sbatch) and for the test that checks
# them (tests/slurm.rs, run by .ci/run).
#
#   eval "$(bash scripts/slurm_local.sh start)"   # prints: export SLURM_CONF=...
#   sinfo; sbatch ...; squeue
#   bash scripts/slurm_local.sh stop
#
# start installs slurm-wlm and munge from Debian's packages when they are
# missing (apt-get, as root), writes a munge key and a slurm.conf for this
# host (its CPU count and memory read from the machine) under $SLURM_LOCAL_DIR
# (default /tmp/regimes-slurm), and starts munged, slurmctld and slurmd there,
# without systemd. stop ends the daemons it started, by their pid files. Both
# are idempotent: a running daemon is left alone, a stopped one is skipped.
# Nothing outside $SLURM_LOCAL_DIR is written but the packages.
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/tmp/regimes-slurm}
CONF=$DIR/slurm.conf
SOCKET=$DIR/munge/munge.socket.2
DAEMONS=(slurmd slurmctld munged)

say() { echo "slurm_local: $*" >&2; }

running() { # NAME: whether the daemon of that pid file is alive
    local pid_file=$DIR/$1.pid
    [[ -s $pid_file ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

install_packages() {
    command -v slurmctld >/dev/null && command -v munged >/dev/null && return
    say "installing slurm-wlm and munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null && apt-get install -y -qq slurm-wlm munge >/dev/null; }
}

write_config() {
    mkdir -p "$DIR"/munge "$DIR"/state "$DIR"/spool
    chmod 700 "$DIR"/munge
    if [[ ! -s $DIR/munge/munge.key ]]; then
        head -c 1024 /dev/urandom >"$DIR"/munge/munge.key
        chmod 400 "$DIR"/munge/munge.key
    fi
    local host cpus memory_mb
    host=$(hostname -s)
    cpus=$(nproc)
    # slurmd refuses a node that claims more memory than it finds: keep 5%
    # back. A job that names no memory gets its CPUs' share (DefMemPerCPU),
    # not the whole node, so tasks of one CPU run side by side.
    memory_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.95 }' /proc/meminfo)
    cat >"$CONF.tmp" <<EOF
# Written by scripts/slurm_local.sh for host $host; rewritten at every start.
ClusterName=regimes-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$SOCKET
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=$((memory_mb / cpus))
EOF
    mv "$CONF.tmp" "$CONF"
}

start() {
    install_packages
    running slurmctld || write_config
    running munged || munged --force --socket="$SOCKET" --key-file="$DIR"/munge/munge.key \
        --pid-file="$DIR"/munged.pid --log-file="$DIR"/munged.log --seed-file="$DIR"/munge/seed
    export SLURM_CONF=$CONF
    running slurmctld || slurmctld -f "$CONF"
    running slurmd || slurmd -f "$CONF"
    # Wait until the node takes jobs (idle), at most a minute.
    local state=""
    for _ in $(seq 60); do
        state=$(sinfo -h -o %T 2>/dev/null | head -1 || true)
        [[ $state == idle* || $state == mixed* || $state == allocated* ]] && break
        sleep 1
    done
    [[ $state == idle* || $state == mixed* || $state == allocated* ]] ||
        { say "the node did not come up (state '${state}'); see $DIR/*.log"; exit 1; }
    say "up: node $(hostname -s), $(nproc) CPUs, state $state"
    echo "export SLURM_CONF=$CONF"
}

stop() {
    local name
    for name in "${DAEMONS[@]}"; do
        if running "$name"; then
            kill "$(cat "$DIR/$name.pid")"
            say "stopped $name"
        fi
    done
    # Give them a few seconds to exit, so that a following start finds them gone.
    for _ in $(seq 10); do
        local alive=0
        for name in "${DAEMONS[@]}"; do running "$name" && alive=1; done
        [[ $alive == 0 ]] && return
        sleep 1
    done
}

case ${1:-} in
start) start ;;
stop) stop ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
