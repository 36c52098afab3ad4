# A web application with its uploads on a replicated volume.
#
#   cluster network  192.0.2.0/24     (eth0)
#   replication      198.51.100.0/24  (eth1)
#   public network   203.0.113.0/24   (eth2; www points at 203.0.113.80)
#
# nginx runs on both nodes (it only proxies); the application, its cache and
# the uploads volume run where the address is.

cluster "web" {
  secret_file = "/etc/hactl/secret"
}

node "web1" {
  address             = "192.0.2.51"
  replication_address = "198.51.100.51"
}

node "web2" {
  address             = "192.0.2.52"
  replication_address = "198.51.100.52"
}

node "arbiter" {
  address = "192.0.2.53"
  witness = true
}

vrrp "www" {
  interface         = "eth2"
  virtual_router_id = 80
  advert_interval   = "100ms"
  priority          = { web1 = 100, web2 = 100 } # equal: no preemption back and forth
  virtual_ips       = ["203.0.113.80/24", "203.0.113.81/24"]
  track_interface   = ["eth2"]

  # The virtual MAC moves with the address, so clients need no new ARP
  # entry; GARPs are still sent for the switches.
  vmac              = true
  garp_count        = 3
  garp_repeat_delay = "2s"

  # nginx answers on both nodes; a node whose nginx is down gives way.
  check "nginx" {
    http        = "http://127.0.0.1/healthz"
    http_status = 204
    interval    = "1s"
    timeout     = "800ms"
    weight      = -10
  }
}

volume "uploads" {
  port = 7790
  disk = { web1 = "/var/lib/hactl/uploads.img", web2 = "/var/lib/hactl/uploads.img" }
  # loop: the backing files are plain files and this kernel has no nbd.
  attach = "loop"

  resync {
    rate = "100M" # a fixed rate: the public link shares the switch
  }

  split_brain {
    after_0pri = "discard-younger-primary"
    after_1pri = "consensus"
  }
}

group "app" {
  vrrp   = "www"
  volume = "uploads"

  filesystem {
    mountpoint = "/srv/uploads"
    fstype     = "ext4"
    options    = ["noatime", "nodev", "nosuid"]
  }

  # Started in this order, stopped in reverse.
  ocf "cache" {
    agent  = "heartbeat:varnish"
    params = { config = "/etc/varnish/default.vcl", listen_address = "127.0.0.1:6081" }
  }

  service "webapp" {
    unit             = "webapp.service"
    monitor_interval = "5s"
  }

  exec "sitemap" {
    start   = ["/usr/local/bin/webapp-sitemap", "--regenerate"]
    monitor = ["/usr/bin/test", "-s", "/srv/uploads/sitemap.xml"]
    timeout = "2m"
  }

  migration_threshold = 2
  failure_timeout     = "30m"
}
