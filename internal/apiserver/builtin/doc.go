// Package builtin serves the few built-in Kubernetes API groups that kubectl and controllers
// need from droverd: core/v1 Namespaces and Events, coordination.k8s.io/v1 Leases, and the
// self-review endpoints behind `kubectl auth whoami` and `kubectl auth can-i`.
package builtin
