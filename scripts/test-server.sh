#!/usr/bin/env bash
# The end-to-end suite's test "server" (driven by tests/e2e/testServer.ts): a second Docker engine
# and an sshd in a network namespace of their own, in a private mount namespace whose root is an
# overlay of the host's that hides the checkout, so that a stack can be deployed to it as to a
# VPS, over ssh://deploy@10.213.0.2 only.
# Usage: scripts/test-server.sh up|down|sshd-start|sshd-stop        (root; Debian for installs)
# Everything it makes is named vpe-test-server (netns, iptables comments, cgroups, dirs, mounts)
# or vpe-ts0/vpe-ts1 (veth), so that `down` finds a killed run's leftovers too.
set -euo pipefail

export name=vpe-test-server
export run=/run/$name data=/var/lib/$name
host_if=vpe-ts0 server_if=vpe-ts1
export host_ip=10.213.0.1 server_ip=10.213.0.2
net=10.213.0.0/30
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export repo_root

die() { echo "test-server: $*" >&2; exit 1; }

# Like scripts/ensure-debian-packages.sh, but without Recommends (openssh-server's pull in
# systemd) and with no service started by a package's postinst: an sshd on the host's port 22,
# or a second dockerd on the default socket, is exactly what this server must not be mistaken for.
ensure_packages() {
  local pair missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  for pair in /usr/sbin/iptables=iptables /usr/sbin/sshd=openssh-server /usr/bin/ssh-keygen=openssh-client \
              /usr/sbin/ip=iproute2 /usr/bin/nsenter=util-linux /usr/sbin/useradd=passwd; do
    [ -x "${pair%%=*}" ] || missing+=("${pair#*=}")
  done
  [ ${#missing[@]} -eq 0 ] && return
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
  echo "test-server: installing ${missing[*]}" >&2
  local policy=/usr/sbin/policy-rc.d made_policy=false
  if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy && made_policy=true
  fi
  apt-get update -qq >/dev/null
  NEEDRESTART_SUSPEND=1 DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || { $made_policy && rm -f $policy; die "apt-get install failed"; }
  if $made_policy; then rm -f $policy; fi
}

# ---- removal -------------------------------------------------------------------------------

# Every process of the server: its pid files (if the pid still runs one of ours), whatever runs in
# its network namespace, and its containers' processes, which live in network namespaces of their
# own but in cgroups under /vpe-test-server (dockerd's --cgroup-parent).
server_pids() {
  local f pid
  for f in "$run/dockerd.pid" "$run/sshd.pid" "$run/exec/containerd/containerd.pid"; do
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

kill_server_processes() {
  local _ pid live
  for _ in $(seq 1 50); do   # 5 s: a process killed with -9 may take a moment to go
    live=()
    for pid in $(server_pids | sort -un); do alive "$pid" && live+=("$pid"); done
    [ ${#live[@]} -eq 0 ] && return 0
    kill -9 "${live[@]}" 2>/dev/null || true
    sleep 0.1
  done
  die "processes of the test server survive kill -9: ${live[*]}"
}

delete_iptables_rules() {
  command -v iptables >/dev/null || return 0
  local table rule
  for table in filter nat; do
    iptables -t $table -S 2>/dev/null | { grep -- "--comment $name" || true; } | while read -r -a rule; do
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

down() {
  kill_server_processes
  # SSH clients on this side (a shared master, a tunnel) hold connections to the server's address:
  # without its veth, what they send would leave through the default route. They go first.
  pkill -f -- "$run/client/" 2>/dev/null || true
  ip link del $host_if 2>/dev/null || true
  [ -e "/run/netns/$name" ] && ip netns del "$name"
  if [ -e "$run/made-run-netns" ] && [ -z "$(ls -A /run/netns 2>/dev/null)" ]; then
    umount -n /run/netns 2>/dev/null || true
    rmdir /run/netns 2>/dev/null || true
  fi
  delete_iptables_rules
  # The server's mounts lived in its own mount namespace and went with its processes; only a
  # mount made on the host (none is, but a half-finished run may differ) needs undoing.
  awk -v n="$name" 'index($0, n) { print $5 }' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -n -l
  rm -rf --one-file-system "$run" "$data"
  remove_cgroups
}

# ---- creation ------------------------------------------------------------------------------

make_network() {
  ip -4 -o addr show | grep -q " ${net%.*}\." && die "an interface already uses $net"
  # `ip netns add` makes /run/netns (a mount) when missing: then it is ours to remove again.
  [ -d /run/netns ] || touch "$run/made-run-netns"
  ip netns add "$name"
  ip link add $host_if type veth peer name $server_if netns "$name"
  ip addr add $host_ip/30 dev $host_if
  # IPv4 only: no link-local IPv6 path from the server to the host's services.
  if [ -e /proc/sys/net/ipv6/conf/$host_if/disable_ipv6 ]; then echo 1 >/proc/sys/net/ipv6/conf/$host_if/disable_ipv6; fi
  ip link set $host_if up
  ip -n "$name" addr add $server_ip/30 dev $server_if
  ip -n "$name" link set lo up
  ip -n "$name" link set $server_if up
  ip -n "$name" route add default via $host_ip

  # Outbound through the host, as the local engine's containers go (apt, PyPI, the host's DNS
  # server): NAT to the default route's interface only. The local dockerd's FORWARD policy is DROP.
  local uplink
  uplink=$(ip -4 route show default | awk '{print $5; exit}')
  [ -n "$uplink" ] || die "no default route: the server's builds could not reach a package mirror"
  echo 1 >/proc/sys/net/ipv4/ip_forward
  local tag=(-m comment --comment "$name")
  iptables -t nat -A POSTROUTING -s $net -o "$uplink" "${tag[@]}" -j MASQUERADE
  iptables -I FORWARD 1 -i $host_if -o "$uplink" "${tag[@]}" -j ACCEPT
  iptables -I FORWARD 1 -i "$uplink" -o $host_if -m conntrack --ctstate RELATED,ESTABLISHED "${tag[@]}" -j ACCEPT
  # Nor does the server open connections to the host (its services, the local engine's published
  # ports), as a VPS would not to the machine deploying to it. Replies to the host's SSH pass.
  iptables -I INPUT 1 -i $host_if "${tag[@]}" -j DROP
  iptables -I INPUT 1 -i $host_if -m conntrack --ctstate RELATED,ESTABLISHED "${tag[@]}" -j ACCEPT
}

make_files() {
  install -d -m 755 "$run" "$run/exec" "$data" "$data/docker" "$data/etc-docker" "$data/rootfs"
  install -d -m 700 "$run/client"
  ssh-keygen -q -t ed25519 -N '' -C "$name host key" -f "$run/ssh_host_ed25519_key"
  ssh-keygen -q -t ed25519 -N '' -C "$name client" -f "$run/client/id_ed25519"
  install -m 644 "$run/client/id_ed25519.pub" "$run/authorized_keys"
  # Pinned from the key just generated: no trust on first use.
  (umask 077; echo "$server_ip $(cut -d' ' -f1,2 "$run/ssh_host_ed25519_key.pub")" >"$run/client/known_hosts")
  cat >"$run/sshd_config" <<EOF
ListenAddress $server_ip:22
HostKey $run/ssh_host_ed25519_key
PidFile $run/sshd.pid
AuthorizedKeysFile $run/authorized_keys
AllowUsers deploy
PermitRootLogin no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
X11Forwarding no
PrintMotd no
LogLevel VERBOSE
EOF
}

# sshd in the foreground, each log line stamped with the time read (sshd's own -E log has no
# timestamps; the suite counts the sessions a `pulumi up` holds open at once).
start_sshd() {
  (
    /usr/sbin/sshd -D -e -f "$run/sshd_config" 2>&1 \
      | while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "${line%$'\r'}"; done >>"$run/sshd.log"
  ) </dev/null >/dev/null 2>&1 &
}

# Runs inside `unshare -m` and the server's network namespace: the server's own root, then its
# two daemons. Mounts made here exist for the server's processes only and go with them.
server_inside() {
  set -euo pipefail
  # mount -n throughout: libmount would keep a /run/mount/utab of the host's for these mounts.
  # The root: the host's root filesystem (without the host's other mounts) under an overlay whose
  # writes (a bind mount's missing source, a user, /etc/docker) stay in memory, not on the host.
  local rootfs=$data/rootfs root=$data/rootfs/root dir
  mount -n -t tmpfs -o mode=755 "$name" "$rootfs"
  mkdir "$rootfs/upper" "$rootfs/work" "$root"
  mount -n -t overlay "$name" -o "lowerdir=/,upperdir=$rootfs/upper,workdir=$rootfs/work" "$root"
  mount -n --rbind /dev "$root/dev"
  mount -n -t tmpfs -o mode=1777 "$name" "$root/dev/shm"
  mount -n -t proc proc "$root/proc"
  mount -n --rbind /sys "$root/sys"            # with the cgroup hierarchies dockerd needs
  mount -n -t tmpfs -o mode=755 "$name" "$root/run"  # no docker.sock, containerd or sshd of the host's
  mkdir -p "$root$run" "$root/run/lock" "$root/run/sshd"
  mount -n --bind "$run" "$root$run"
  mount -n -t tmpfs -o mode=700 "$name" "$root$run/client"  # the client's private key stays the client's
  mount -n --bind "$data/docker" "$root$data/docker"        # the data root: on disk, not in the overlay
  # Its own /etc/docker: a 20.10 engine derives its ID from key.json there (the local engine's, else).
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

  groupadd -f docker
  useradd -m -U -G docker -s /bin/bash -p '*' deploy   # "*": no password, yet not locked for sshd

  # Its own containerd (dockerd starts one under --exec-root: nothing at /run/containerd here),
  # its own addresses, and both sockets: ours, and the default one for `docker` in SSH sessions.
  # Its containers' cgroups go under /vpe-test-server, where `down` finds a killed run's.
  setsid dockerd \
    --data-root "$data/docker" --exec-root "$run/exec" --pidfile "$run/dockerd.pid" \
    -H "unix://$run/docker.sock" -H unix:///run/docker.sock --group docker \
    --bip 10.213.64.1/24 --default-address-pool base=10.213.128.0/17,size=24 \
    --iptables --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/$name" \
    </dev/null >>"$run/dockerd.log" 2>&1 &
  start_sshd
}

client_ssh() {
  ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$run/client/known_hosts" \
    -o IdentitiesOnly=yes -i "$run/client/id_ed25519" -o ConnectTimeout=5 "deploy@$server_ip" "$@"
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

sshd_answers() { timeout 2 bash -c "exec 3<>/dev/tcp/$server_ip/22 && head -c 4 <&3 | grep -q SSH-"; }

up() {
  ensure_packages
  down
  install -d -m 755 "$run"
  make_network
  make_files
  unshare -m --propagation private nsenter --net="/run/netns/$name" \
    bash -c "$(declare -f server_inside start_sshd); server_inside"
  local docker=/usr/bin/docker
  [ -x $docker ] || docker=docker
  wait_for 60 $docker -H "unix://$run/docker.sock" version \
    || { tail -20 "$run/dockerd.log" >&2; die "the server's dockerd did not answer within 60 s"; }
  wait_for 20 sshd_answers || { tail -20 "$run/sshd.log" >&2; die "sshd did not answer within 20 s"; }
  client_ssh docker version >/dev/null || die "deploy cannot run docker over SSH"
}

sshd_start() {
  local pid
  pid=$(cat "$run/dockerd.pid") || die "no server runs (no $run/dockerd.pid)"
  nsenter -t "$pid" -m -n bash -c "$(declare -f start_sshd); cd / && start_sshd"
  wait_for 20 sshd_answers || { tail -20 "$run/sshd.log" >&2; die "sshd did not answer within 20 s"; }
}

sshd_stop() {
  local pid
  pid=$(cat "$run/sshd.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
  wait_for 10 bash -c "! kill -0 $pid" || die "sshd ($pid) did not stop within 10 s"
  rm -f "$run/sshd.pid"
}

[ "$(id -u)" = 0 ] || die "needs root (network and mount namespaces, a second dockerd)"
case "${1:-}" in
  up) up ;;
  down) down ;;
  sshd-start) sshd_start ;;
  sshd-stop) sshd_stop ;;
  *) die "usage: $0 up|down|sshd-start|sshd-stop" ;;
esac
