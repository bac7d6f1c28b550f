// Package cluster keeps a Cluster's status: registered and connected container instances, running
// and pending tasks, active services, and the usage meter of connected instance-seconds.
package cluster
