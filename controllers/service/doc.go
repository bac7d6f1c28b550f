// Package service keeps a Service's tasks running: for schedulingStrategy REPLICA exactly
// desiredCount tasks whose desiredStatus is RUNNING, replacing tasks that stop or turn UNHEALTHY,
// scaling in by the placement strategies, and backing off when tasks keep failing to start.
//
// Tasks are named <service>-<revision>-<slot>-<attempt>. A service fills the lowest free slots; a
// slot holds at most one task whose desiredStatus is RUNNING, and a replacement in a slot takes the
// next attempt number. Because a task only ever becomes less active (desiredStatus RUNNING to
// STOPPED, lastStatus forward), a stale cache can only show a slot as busier than it is, and a
// task it has not seen yet is recreated under the same name and refused as AlreadyExists: the
// controller never starts duplicates.
package service
