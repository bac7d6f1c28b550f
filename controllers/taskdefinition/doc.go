// Package taskdefinition snapshots every change to a TaskDefinition's spec into the next immutable
// TaskDefinitionRevision, <family>-<n>, and reports the newest one in the TaskDefinition's status.
package taskdefinition
