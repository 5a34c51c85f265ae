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

# shellcheck source=scripts/test-hosts-lib.sh
. "$repo_root/scripts/test-hosts-lib.sh"

down() {
  # SSH clients on this side (a shared master, a tunnel) hold connections to the server's address:
  # without its veth, what they send would leave through the default route. They go first, after
  # the server's own processes.
  kill_host_processes
  pkill -f -- "$run/client/" 2>/dev/null || true
  ip link del $host_if 2>/dev/null || true
  [ -e "/run/netns/$name" ] && ip netns del "$name"
  remove_run_netns_if_ours "$run/made-run-netns"
  delete_iptables_rules "$name"
  remove_host
}

# ---- creation ------------------------------------------------------------------------------

make_network() {
  ip -4 -o addr show | grep -q " ${net%.*}\." && die "an interface already uses $net"
  # `ip netns add` makes /run/netns (a mount) when missing: then it is ours to remove again.
  [ -d /run/netns ] || touch "$run/made-run-netns"
  ip netns add "$name"
  ip link add $host_if type veth peer name $server_if netns "$name"
  ip addr add $host_ip/30 dev $host_if
  ipv4_only $host_if
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
  install -d -m 755 "$run" "$data"
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
# two daemons.
server_inside() {
  isolated_root
  mkdir -p /run/sshd
  mount -n -t tmpfs -o mode=700 "$name" "$run/client"  # the client's private key stays the client's
  groupadd -f docker
  useradd -m -U -G docker -s /bin/bash -p '*' deploy   # "*": no password, yet not locked for sshd
  # Both sockets: ours, and the default one for `docker` in SSH sessions.
  start_dockerd -H unix:///run/docker.sock --group docker \
    --bip 10.213.64.1/24 --default-address-pool base=10.213.128.0/17,size=24
  start_sshd
}

client_ssh() {
  ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$run/client/known_hosts" \
    -o IdentitiesOnly=yes -i "$run/client/id_ed25519" -o ConnectTimeout=5 "deploy@$server_ip" "$@"
}

sshd_answers() { timeout 2 bash -c "exec 3<>/dev/tcp/$server_ip/22 && head -c 4 <&3 | grep -q SSH-"; }

up() {
  ensure_packages /usr/sbin/sshd=openssh-server /usr/bin/ssh-keygen=openssh-client /usr/sbin/useradd=passwd
  down
  install -d -m 755 "$run"
  make_network
  make_files
  unshare -m --propagation private nsenter --net="/run/netns/$name" \
    bash -c "$(declare -f server_inside isolated_root start_dockerd start_sshd); server_inside"
  wait_for_dockerd
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
