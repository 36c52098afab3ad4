# Host checks: a relative secret_file resolves next to this file.
cluster "c" {
  secret_file = "no-such.secret"
}

node "alpha" {
  address = "192.0.2.11"
}

node "bravo" {
  address = "192.0.2.12"
}
