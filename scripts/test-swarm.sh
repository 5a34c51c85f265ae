#!/usr/bin/env bash
# The end-to-end suite's test swarm (driven by tests/e2e/testSwarm.ts): three Docker engines, each
# in a network namespace and private root of its own (as the test server's: no checkout, no
# machine's docker.sock), on one bridge, joined into one swarm: node 0 its manager, nodes 1 and 2
# workers. The nodes reach each other only, and of this machine's services only the swarm's
# registry (Debian's docker-registry on the bridge, 10.214.0.1:5000, TLS from a CA made here, which
# the nodes and the local engine trust through their certs.d), not any other address.
# Usage: scripts/test-swarm.sh up|down|kill-node N|start-node N        (root; Debian for installs)
# Everything it makes is named vpe-test-swarm (iptables comments, /run/vpe-test-swarm),
# vpe-test-swarm-N (netns, cgroups, dirs, mounts) or vpe-tsw* (links), so that `down` finds a killed
# run's leftovers too.
set -euo pipefail

swarm=vpe-test-swarm
swarm_run=/run/$swarm
bridge=vpe-tsw
net=10.214.0.0/24 host_ip=10.214.0.1
node_count=3
registry=$host_ip:5000
registry_run=$swarm_run/registry registry_data=/var/lib/$swarm/registry
# The local engine's trust in the registry (read at each push; ours to remove, and certs.d if we made it).
local_certs=/etc/docker/certs.d
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export repo_root

# shellcheck source=scripts/test-hosts-lib.sh
. "$repo_root/scripts/test-hosts-lib.sh"

node_ip() { echo "10.214.0.$((10 + $1))"; }

select_swarm() { # the globals for what is the swarm's own: the registry, its CA and data
  export name=$swarm run=$swarm_run data=/var/lib/$swarm
}

select_node() { # sets the globals the library's functions act on
  [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -lt $node_count ] || die "no node $1: nodes are 0 to $((node_count - 1))"
  node=$1
  export name=$swarm-$1 run=/run/$swarm-$1 data=/var/lib/$swarm-$1
}

node_docker() { "$(docker_client)" -H "unix://$run/docker.sock" "$@"; }

# ---- removal -------------------------------------------------------------------------------

down() {
  local i
  for i in $(seq 0 $((node_count - 1))); do
    select_node "$i"
    kill_host_processes
    [ -e "/run/netns/$name" ] && ip netns del "$name"   # with the node's end of its veth pair
    remove_host
  done
  for i in $(seq 0 $((node_count - 1))); do ip link del "$bridge$i" 2>/dev/null || true; done
  ip link del "$bridge" 2>/dev/null || true
  delete_iptables_rules "$swarm"
  rm -rf "${local_certs:?}/$registry"
  if [ -e "$swarm_run/made-certs-d" ]; then rmdir "$local_certs" 2>/dev/null || true; fi
  remove_run_netns_if_ours "$swarm_run/made-run-netns"
  select_swarm
  remove_host   # the registry (its pid file), its data and $swarm_run
}

# ---- creation ------------------------------------------------------------------------------

make_network() {
  ip -4 -o addr show | grep -q " ${net%.*}\." && die "an interface already uses $net"
  install -d -m 755 "$swarm_run"
  [ -d /run/netns ] || touch "$swarm_run/made-run-netns"
  ip link add "$bridge" type bridge
  ip addr add $host_ip/24 dev "$bridge"
  local i
  for i in $(seq 0 $((node_count - 1))); do
    select_node "$i"
    ip netns add "$name"
    ip link add "$bridge$i" type veth peer name eth0 netns "$name"
    ipv4_only "$bridge$i"
    ip link set "$bridge$i" master "$bridge" up
    ip -n "$name" addr add "$(node_ip "$i")/24" dev eth0
    ip -n "$name" link set lo up
    ip -n "$name" link set eth0 up
    # No default route: an address off the bridge is unreachable from a node, not routed on.
  done
  ipv4_only "$bridge"
  ip link set "$bridge" up
  # Node to node (the swarm's 2377/tcp, 7946/tcp+udp and VXLAN's 4789/udp) through the bridge,
  # which the local dockerd's FORWARD policy (DROP, with br_netfilter) would stop; to this machine
  # only replies (the test's own connections to a node).
  local tag=(-m comment --comment "$swarm")
  iptables -I FORWARD 1 -i "$bridge" -o "$bridge" "${tag[@]}" -j ACCEPT
  iptables -I INPUT 1 -i "$bridge" "${tag[@]}" -j DROP
  iptables -I INPUT 1 -i "$bridge" -m conntrack --ctstate RELATED,ESTABLISHED "${tag[@]}" -j ACCEPT
  iptables -I INPUT 1 -i "$bridge" -d $host_ip -p tcp --dport "${registry#*:}" "${tag[@]}" -j ACCEPT
}

# The registry, as nobody, with a certificate for its address from a CA that lives only as long as
# the swarm; the CA goes into the local engine's and every node's certs.d.
make_registry() {
  install -d -m 755 "$registry_run"
  install -d -m 700 -o 65534 -g 65534 "$registry_data"
  local dir=$registry_run curve=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
  openssl req -x509 "${curve[@]}" -days 2 -subj "/CN=$swarm CA" -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req "${curve[@]}" -subj "/CN=$registry" -keyout "$dir/registry.key" -out "$dir/registry.csr" 2>/dev/null
  openssl x509 -req -in "$dir/registry.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
    -extfile <(printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\n' "$host_ip") -out "$dir/registry.crt" 2>/dev/null
  rm -f "$dir/ca.key" "$dir/registry.csr"
  chown 65534:65534 "$dir/registry.key"
  chmod 400 "$dir/registry.key"
  cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $registry_data
  delete:
    enabled: true
http:
  addr: $registry
  tls:
    certificate: $dir/registry.crt
    key: $dir/registry.key
YAML
  setsid setpriv --reuid=65534 --regid=65534 --clear-groups docker-registry serve "$dir/config.yml" \
    </dev/null >>"$dir/registry.log" 2>&1 &
  echo $! >"$swarm_run/registry.pid"   # setsid and setpriv exec: the registry's own pid
  [ -d "$local_certs" ] || touch "$swarm_run/made-certs-d"
  install -D -m 644 "$dir/ca.crt" "$local_certs/$registry/ca.crt"
  local i
  for i in $(seq 0 $((node_count - 1))); do
    select_node "$i"
    install -D -m 644 "$dir/ca.crt" "$data/etc-docker/certs.d/$registry/ca.crt"
  done
  wait_for 20 curl -fsS --cacert "$dir/ca.crt" "https://$registry/v2/" \
    || { tail -20 "$dir/registry.log" >&2; die "the registry did not answer within 20 s"; }
}

# Runs inside `unshare -m -u` and the node's network namespace.
node_inside() {
  isolated_root
  hostname "$name"
  start_dockerd --bip "10.214.$((64 + node)).1/24" --default-address-pool "base=10.214.$((128 + 16 * node)).0/20,size=24"
}

start_node() {
  install -d -m 755 "$run" "$data"
  unshare -m -u --propagation private nsenter --net="/run/netns/$name" \
    env node="$node" bash -c "$(declare -f node_inside isolated_root start_dockerd); node_inside"
  wait_for_dockerd
}

nodes_ready() { # true once the manager lists every node Ready
  [ "$(node_docker node ls --format '{{.Status}}' | grep -c '^Ready$')" -eq $node_count ]
}

make_swarm() {
  select_node 0
  local manager
  manager=$(node_ip 0)
  # Overlay subnets from a pool of the test's own, clear of the nodes' bridges above.
  node_docker swarm init --advertise-addr "$manager" --listen-addr "$manager:2377" \
    --default-addr-pool 10.214.192.0/18 --default-addr-pool-mask-length 24 >/dev/null
  local token i
  token=$(node_docker swarm join-token -q worker)
  for i in $(seq 1 $((node_count - 1))); do
    select_node "$i"
    node_docker swarm join --advertise-addr "$(node_ip "$i")" --token "$token" "$manager:2377" >/dev/null
  done
  select_node 0
  wait_for 60 nodes_ready || { node_docker node ls >&2; die "not every node was Ready within 60 s"; }
}

up() {
  ensure_packages /usr/bin/docker-registry=docker-registry /usr/bin/openssl=openssl /usr/bin/curl=curl
  down
  make_network
  make_registry
  local i
  for i in $(seq 0 $((node_count - 1))); do
    select_node "$i"
    start_node
  done
  make_swarm
}

# A node's engine and everything it runs killed at once, as a power cut would (its network stays).
kill_node() {
  select_node "$1"
  kill_host_processes
}

start_node_again() {
  select_node "$1"
  [ -e "/run/netns/$name" ] || die "no swarm is up (no netns $name)"
  host_pids | grep -q . && die "$name is still running"
  start_node
}

[ "$(id -u)" = 0 ] || die "needs root (network and mount namespaces, more dockerds)"
case "${1:-}" in
  up) up ;;
  down) down ;;
  kill-node) kill_node "${2:-}" ;;
  start-node) start_node_again "${2:-}" ;;
  *) die "usage: $0 up|down|kill-node N|start-node N" ;;
esac
