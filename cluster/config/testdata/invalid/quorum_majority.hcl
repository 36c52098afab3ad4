# A majority of two is both nodes: any failure would stop the cluster.
cluster "c" {
  secret_file = "/etc/hactl/secret"
  quorum      = "majority"
}

node "alpha" {
  address = "192.0.2.11"
}

node "bravo" {
  address = "192.0.2.12"
}
