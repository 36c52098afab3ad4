# A check runs exactly one probe, finishing within its interval.
cluster "c" {
  secret_file = "/etc/hactl/secret"
}

node "alpha" {
  address = "192.0.2.11"
}

node "bravo" {
  address = "192.0.2.12"
}

vrrp "VI_1" {
  interface         = "eth0"
  virtual_router_id = 51
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.100/24"]

  check "none" {
    interval = "2s"
  }

  check "two" {
    tcp  = "127.0.0.1:80"
    http = "http://127.0.0.1/"
  }

  check "slow" {
    tcp      = "127.0.0.1:80"
    interval = "1s"
    timeout  = "3s"
  }

  check "status_on_tcp" {
    tcp         = "127.0.0.1:80"
    http_status = 204
    dns_query   = "example.com."
  }

  check "no_query" {
    dns = "127.0.0.1"
  }

  check "empty" {
    exec = []
  }

  check "blank_arg" {
    exec = ["/usr/bin/ping", ""]
  }

  check "bad_targets" {
    tcp = "localhost"
  }

  check "bad_url" {
    http   = "ftp://127.0.0.1/"
    weight = -300
    rise   = 0
  }
}
