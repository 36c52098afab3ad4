cluster "c" {
  secret_file = "/etc/hactl/secret"
}

node "alpha" {
  address             = "192.0.2.11"
  replication_address = "198.51.100.11"
}

node "bravo" {
  address             = "192.0.2.11"
  replication_address = "198.51.100.11"
}

# One network for everything: a node may repeat its own address.
node "charlie" {
  address             = "192.0.2.13"
  replication_address = "192.0.2.13"
}

node "delta" {
  address = "192.0.2.13"
}
