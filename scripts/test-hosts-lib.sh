# Shared by scripts/test-server.sh and scripts/test-swarm.sh (sourced, not run): the making and the
# removal of a test host, a Docker engine of its own in a network namespace and a private root.
# A function here acts on the host named by the globals `name` (netns, cgroup parent, iptables
# comment), `run` (/run/$name: sockets, pid files, logs) and `data` (/var/lib/$name).

die() { echo "$(basename "$0" .sh): $*" >&2; exit 1; }

# Installs what is missing (Debian's packages), without Recommends (openssh-server's pull in
# systemd) and with no service started by a package's postinst: an sshd on the host's port 22, or
# a second dockerd on the default socket, is exactly what a test host must not be mistaken for.
# Arguments: binary=package pairs.
ensure_packages() {
  local pair missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  for pair in /usr/sbin/iptables=iptables /usr/sbin/ip=iproute2 /usr/bin/nsenter=util-linux "$@"; do
    [ -x "${pair%%=*}" ] || missing+=("${pair#*=}")
  done
  [ ${#missing[@]} -eq 0 ] && return
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
  echo "$(basename "$0" .sh): installing ${missing[*]}" >&2
  local policy=/usr/sbin/policy-rc.d made_policy=false
  if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy && made_policy=true
  fi
  apt-get update -qq >/dev/null
  NEEDRESTART_SUSPEND=1 DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || { $made_policy && rm -f $policy; die "apt-get install failed"; }
  if $made_policy; then rm -f $policy; fi
}

wait_for() { # wait_for SECONDS COMMAND...: polls every 0.2 s until COMMAND succeeds
  local seconds=$1 deadline
  shift
  deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

# ---- removal -------------------------------------------------------------------------------

# Every process of the host: its pid files (if the pid still runs one of ours), whatever runs in
# its network namespace, and its containers' processes, which live in network namespaces of their
# own but in cgroups under /$name (dockerd's --cgroup-parent).
host_pids() {
  local f pid
  for f in "$run"/*.pid "$run/exec/containerd/containerd.pid"; do
    pid=$(cat "$f" 2>/dev/null) || continue
    grep -qaF "$name" "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
  done
  [ -e "/run/netns/$name" ] && ip netns pids "$name" 2>/dev/null
  grep -lE ":/$name(/|\$)" /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3
  return 0
}

alive() { # true while a pid runs (a zombie does not count: its parent reaps it)
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ "$state" != Z ]
}

kill_host_processes() {
  local _ pid live
  for _ in $(seq 1 50); do   # 5 s: a process killed with -9 may take a moment to go
    live=()
    for pid in $(host_pids | sort -un); do alive "$pid" && live+=("$pid"); done
    [ ${#live[@]} -eq 0 ] && return 0
    kill -9 "${live[@]}" 2>/dev/null || true
    sleep 0.1
  done
  die "processes of $name survive kill -9: ${live[*]}"
}

delete_iptables_rules() { # delete_iptables_rules COMMENT: the host's rules tagged with it
  command -v iptables >/dev/null || return 0
  local table rule
  for table in filter nat; do
    iptables -t $table -S 2>/dev/null | { grep -- "--comment $1" || true; } | while read -r -a rule; do
      rule[0]=-D
      iptables -t $table "${rule[@]}"
    done
  done
}

remove_cgroups() {
  local _
  for _ in $(seq 1 20); do   # a cgroup is busy for a moment after its last process died
    find /sys/fs/cgroup -depth -type d \( -name "$name" -o -path "*/$name/*" \) \
      -exec rmdir {} \; 2>/dev/null || true
    [ -z "$(find /sys/fs/cgroup -type d -name "$name" 2>/dev/null)" ] && return 0
    sleep 0.2
  done
  die "cgroups left: $(find /sys/fs/cgroup -type d -name "$name" | tr '\n' ' ')"
}

# The host's processes, mounts, directories and cgroups (not its netns or links: who made them removes them).
remove_host() {
  kill_host_processes
  # The host's mounts lived in its own mount namespace and went with its processes; only a mount
  # made on this machine (none is, but a half-finished run may differ) needs undoing.
  awk -v n="$name" 'index($0, n) { print $5 }' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -n -l
  rm -rf --one-file-system "$run" "$data"
  remove_cgroups
}

remove_run_netns_if_ours() { # /run/netns is a mount `ip netns add` made when it was missing
  if [ -e "$1" ] && [ -z "$(ls -A /run/netns 2>/dev/null)" ]; then
    umount -n /run/netns 2>/dev/null || true
    rmdir /run/netns 2>/dev/null || true
  fi
  rm -f "$1"
}

# ---- creation ------------------------------------------------------------------------------

ipv4_only() { # ipv4_only LINK: no link-local IPv6 path from a test host to this machine's services
  if [ -e "/proc/sys/net/ipv6/conf/$1/disable_ipv6" ]; then echo 1 >"/proc/sys/net/ipv6/conf/$1/disable_ipv6"; fi
}

# Runs inside `unshare -m` and the host's network namespace, and makes the host's own root: the
# machine's root filesystem (without its other mounts) under an overlay whose writes (a bind
# mount's missing source, a user, /etc/docker) stay in memory, not on the machine; the checkout,
# /work, /home, /root, /tmp and the machine's /run (docker.sock, containerd) hidden. Mounts made
# here exist for the host's processes only and go with them. Leaves the caller in the new root.
isolated_root() {
  set -euo pipefail
  # mount -n throughout: libmount would keep a /run/mount/utab of the machine's for these mounts.
  local rootfs=$data/rootfs root=$data/rootfs/root dir
  mkdir -p "$rootfs" "$data/docker" "$data/etc-docker"
  mount -n -t tmpfs -o mode=755 "$name" "$rootfs"
  mkdir "$rootfs/upper" "$rootfs/work" "$root"
  mount -n -t overlay "$name" -o "lowerdir=/,upperdir=$rootfs/upper,workdir=$rootfs/work" "$root"
  mount -n --rbind /dev "$root/dev"
  mount -n -t tmpfs -o mode=1777 "$name" "$root/dev/shm"
  mount -n -t proc proc "$root/proc"
  mount -n --rbind /sys "$root/sys"            # with the cgroup hierarchies dockerd needs
  mount -n -t tmpfs -o mode=755 "$name" "$root/run"
  mkdir -p "$root$run" "$root/run/lock"
  mount -n --bind "$run" "$root$run"
  mount -n --bind "$data/docker" "$root$data/docker"        # the data root: on disk, not in the overlay
  # Its own /etc/docker: a 20.10 engine derives its ID from key.json there (the machine's, else).
  mount -n --bind "$data/etc-docker" "$root/etc/docker"
  for dir in "$repo_root" /work /home /root /var/lib/docker /tmp /var/tmp; do
    [ -d "$root$dir" ] && mount -n -t tmpfs -o mode=755 "$name" "$root$dir"
  done
  chmod 1777 "$root/tmp" "$root/var/tmp"
  cd "$root"
  mkdir old-root
  pivot_root . old-root
  cd /
  umount -n -l /old-root
  rmdir /old-root
}

# The host's dockerd, in the background: its own containerd (dockerd starts one under
# --exec-root: nothing at /run/containerd here), data root and sockets; its containers' cgroups
# under /$name, where removal finds a killed run's. Arguments: more dockerd options.
start_dockerd() {
  mkdir -p "$run/exec"
  setsid dockerd \
    --data-root "$data/docker" --exec-root "$run/exec" --pidfile "$run/dockerd.pid" \
    -H "unix://$run/docker.sock" \
    --iptables --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/$name" "$@" \
    </dev/null >>"$run/dockerd.log" 2>&1 &
}

docker_client() { if [ -x /usr/bin/docker ]; then echo /usr/bin/docker; else command -v docker; fi; }

wait_for_dockerd() {
  wait_for 60 "$(docker_client)" -H "unix://$run/docker.sock" version \
    || { tail -20 "$run/dockerd.log" >&2; die "$name's dockerd did not answer within 60 s"; }
}
