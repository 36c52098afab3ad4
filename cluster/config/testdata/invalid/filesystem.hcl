cluster "c" {
  secret_file = "/etc/hactl/secret"
}

node "alpha" {
  address             = "192.0.2.11"
  replication_address = "198.51.100.11"
}

node "bravo" {
  address             = "192.0.2.12"
  replication_address = "198.51.100.12"
}

vrrp "VI_1" {
  interface         = "eth0"
  virtual_router_id = 51
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.100/24"]
}

volume "a" {
  port = 7788
  disk = { alpha = "/dev/vg0/a", bravo = "/dev/vg0/a" }
}

group "relative" {
  vrrp   = "VI_1"
  volume = "a"
  filesystem {
    mountpoint = "srv/data"
    fstype     = "ext4"
  }
  filesystem {
    mountpoint = "/srv/other"
    fstype     = "ext4"
  }
}

group "no_volume" {
  vrrp = "VI_1"
  filesystem {
    mountpoint = "/srv/data"
    fstype     = "ext4"
  }
}

group "same_mount" {
  vrrp = "VI_1"
  filesystem {
    mountpoint = "/srv/data/"
    fstype     = "ext4"
  }
}
