// Package registration serves droverd's registration endpoints: a host presents an activation id and
// code with a certificate signing request and receives a ContainerInstance, its heartbeat Lease and a
// client certificate for the instance's own identity; a registered instance renews that certificate
// with its current one. The protocol is in package wire.
package registration
