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

volume "a" {
  port = 7788
  disk = { alpha = "/dev/vg0/a", bravo = "/dev/vg0/a" }
  resync {
    min_rate = "500M"
    max_rate = "100M"
  }
  resync {
    checksum = true
  }
}

volume "b" {
  port = 7789
  disk = { alpha = "/dev/vg0/b", bravo = "/dev/vg0/b" }
  resync {
    rate     = "100M"
    max_rate = "1G"
  }
  split_brain {
    after_0pri = "disconnect"
  }
  split_brain {
    after_1pri = "disconnect"
  }
}

volume "c" {
  port = 7790
  disk = { alpha = "/dev/vg0/c", bravo = "/dev/vg0/c" }
  resync {
    min_rate = "2M" # the floor above the ceiling
    max_rate = "1M"
  }
}
