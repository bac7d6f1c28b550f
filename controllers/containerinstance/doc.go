// Package containerinstance turns heartbeats into connection state: an instance whose Lease has
// not been renewed within the grace period is marked agentConnected=false with a Connected=False
// condition and an Event, and is marked connected again on its next renewal.
package containerinstance
