// Package placement binds unplaced Tasks to ContainerInstances of their cluster, like
// kube-scheduler binds pods: one pass per cluster places every waiting task in creation order,
// checking cpu, memory, host ports, constraints and strategies (internal/placement), and binds each
// with a write conditional on the task's resourceVersion. Bindings not yet visible in the cache
// are remembered, so a lagging cache never double-books an instance.
package placement
