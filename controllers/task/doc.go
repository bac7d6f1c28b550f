// Package task resolves standalone tasks' task definitions into their spec, stops tasks that can no
// longer run (never placed, or bound to a deregistered container instance), and deletes stopped tasks
// once they have been visible for the retention period, as ECS keeps stopped tasks for about an hour.
package task
