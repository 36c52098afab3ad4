# Resource blocks of a group.
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
}

group "g" {
  vrrp = "VI_1"

  exec "nothing" {
    start = []
  }

  exec "blank" {
    start       = ["/usr/local/bin/warm"]
    monitor     = ["/usr/local/bin/check", ""]
    environment = { "BAD-NAME" = "x", GOOD = "y" }
  }

  ocf "cache" {
    agent  = "varnish"
    params = { "1st" = "x" }
  }

  service "web" {
    unit             = ""
    timeout          = "0s"
    monitor_interval = "soon"
  }

  migration_threshold = -1
}
