// Package resources is hactl's resource model: the Agent interface every
// resource implements, groups of resources in failover order, failure
// counting, and the planner that decides what a group does about an event.
//
// A group runs on the node that holds its VRRP instance. Its resources
// start in one fixed order (DESIGN §3.2): the volume becomes Primary, the
// filesystem is mounted, the service, exec and ocf resources start in the
// order the cluster file declares them, and the virtual IPs come last. They
// stop in the exact reverse order. Start and stop are idempotent: the
// planner skips a resource already where it should be, and an agent asked
// to start a running resource or stop a stopped one succeeds.
//
// Every operation returns a Result classed as OCF classes failures:
// Soft is recovered in place (the resource and everything after it are
// restarted), Hard moves the group away from this node, Fatal stops the
// group and blocks it everywhere until an operator cleans it up. FromOCF
// maps the exit codes of OCF agents to these classes. Failures are
// recorded per resource on each node; when one resource's count within
// failure_timeout reaches migration_threshold, or after a hard failure,
// the group moves away and stays Banned from the node until the failures
// expire or a Cleanup forgets them. A failed stop is never retried: the resource may still
// hold the volume, so either the group blocks on this node (the peer must
// not take over) or the node fences itself, as on_stop_failure says.
//
// The package is pure: no processes, no clock, no goroutines. Group.Plan
// takes this node's State, an Event and the current time, and returns the
// Steps in order, each with its reason; --dry-run prints that Plan and the
// runner carries it out. Plan never changes the State. The runner does, as
// each step completes:
//
//	start           Starting, then Started; on failure Failed and a StartFailed event
//	stop            Stopping, then Stopped; on failure a StopFailed event
//	monitor         nothing; on failure or NotRunning, Failed and a MonitorFailed event
//	record-failure  State.Failures.Add(resource, now, class)
//	reset-failures  State.Failures = nil
//	block           State.Blocked = reason; the step's resource, if any, becomes Blocked
//	unblock         State.Blocked = ""; Blocked resources become Failed
//	self-fence      reboot this node
//	give-up         resign the VRRP instance so another node takes the group
//
// The runner stops at the first step that fails and plans again with the
// failure as the event, so every recovery is itself a plan with reasons.
package resources
