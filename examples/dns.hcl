# Two recursive DNS resolvers, active/active: each node holds one of the two
# addresses that clients have as nameservers, and takes over the other one
# when its peer fails. Unbound runs on both nodes all the time, so there is
# no volume and no group: the VRRP instances alone move the addresses.
#
#   cluster and service network  192.0.2.0/24 (eth0)
#   nameservers                  192.0.2.53 and 192.0.2.54
#
# The upstream router still speaks VRRPv2 with PASS authentication for its
# own instances on this segment, so these do too (whole-second adverts).

cluster "dns" {
  secret_file = "secret" # next to this file: /etc/hactl/secret
}

node "ns1" {
  address = "192.0.2.41"
}

node "ns2" {
  address = "192.0.2.42"
}

vrrp "ns-a" {
  interface         = "eth0"
  virtual_router_id = 53
  version           = 2
  advert_interval   = "1s"
  auth_pass         = "dns-a"
  priority          = { ns1 = 150, ns2 = 100 }
  virtual_ips       = ["192.0.2.53/24"]

  # A resolver that cannot resolve must not hold a nameserver address:
  # weight 0 puts the instance in FAULT, so the peer takes the address.
  check "unbound" {
    dns       = "127.0.0.1"
    dns_query = "example.com."
    interval  = "1s"
    timeout   = "500ms"
    fall      = 2
  }
}

vrrp "ns-b" {
  interface         = "eth0"
  virtual_router_id = 54
  version           = 2
  auth_pass         = "dns-b"
  priority          = { ns1 = 100, ns2 = 150 }
  virtual_ips       = ["192.0.2.54/24"]

  check "unbound" {
    dns       = "127.0.0.1:53"
    dns_query = "example.com."
    interval  = "1s"
    timeout   = "500ms"
    fall      = 2
  }
}
