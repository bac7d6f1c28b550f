// Package task resolves standalone tasks' task definitions into their spec, turns the Resolved and
// Placed conditions of a task that waited True once it is resolved and bound, stops tasks that can no
// longer run (never placed, or bound to a deregistered container instance), and deletes stopped tasks
// once they have been visible for the retention period, as ECS keeps stopped tasks for about an hour.
package task
