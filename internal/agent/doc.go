// Package agent is drover-agent: it registers a host with an activation (trusting the control
// plane only through a pinned CA hash), keeps the resulting identity in a state directory, and
// runs the components that report the host to the control plane - its ContainerInstance status,
// its heartbeat Lease and the renewal of its client certificate - the task engine, and the tunnel
// over which droverd reads the output of the host's containers.
//
// Register and Run are the entry points; both can run in-process, for tests.
package agent
