// Package agents holds hactl's resource agents, each implementing
// resources.Agent in its own package:
//
//	filesystem  mounts a group's volume (fsck when not cleanly unmounted,
//	            monitor by a read and optionally a write, stop that kills
//	            only the processes using the mountpoint)
//	execagent   argv start/stop/monitor commands, no shell
//	ocf         existing OCF resource-agent scripts
//
// The exec and ocf agents share internal/run, which runs one command in
// its own process group with a minimal environment and a deadline.
package agents
