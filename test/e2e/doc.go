// Package e2e tests the real droverd binary as users and operators run it: as separate processes,
// killed and restarted, sharing an etcd, and driven by the installed kubectl.
package e2e
