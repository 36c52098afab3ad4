cluster "one" {
  secret_file = "/etc/hactl/secret"
}

cluster "two" {
  secret_file = "/etc/hactl/secret"
}

node "alpha" {
  address = "192.0.2.11"
}

node "bravo" {
  address = "192.0.2.12"
}
