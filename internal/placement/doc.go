// Package placement decides where tasks run: which container instance receives a task (Place), how a batch of
// placements accounts for each other (Assign), and which of a service's tasks stop first on scale-in
// (ScaleIn). It follows the ECS placement rules and makes no API calls; the placement controller feeds it
// what it reads from the cluster.
package placement
