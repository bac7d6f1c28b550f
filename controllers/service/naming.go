package service

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

// Labels a service puts on its tasks besides ecs.drover.dev/service and ecs.drover.dev/revision.
const (
	// LabelSlot is the task's slot within its service and revision.
	LabelSlot = "ecs.drover.dev/slot"
	// LabelAttempt counts the tasks that have held the slot before this one.
	LabelAttempt = "ecs.drover.dev/attempt"
)

// maxNameLength is the longest object name the API accepts.
const maxNameLength = 253

// taskName is the deterministic name of attempt a in slot s of revision n of service svc. A REPLICA
// slot is a number; a DAEMON slot is the instance's name.
func taskName(svc string, revision int32, slot string, attempt int) string {
	suffix := fmt.Sprintf("-%d-%s-%d", revision, slot, attempt)
	if len(svc)+len(suffix) <= maxNameLength {
		return svc + suffix
	}
	sum := sha256.Sum256([]byte(svc))
	keep := max(maxNameLength-len(suffix)-9, 1)
	if keep > len(svc) {
		keep = len(svc)
	}
	name := svc[:keep] + "-" + hex.EncodeToString(sum[:4]) + suffix
	if len(name) > maxNameLength {
		// An instance name near the limit: hash the whole suffix too.
		all := sha256.Sum256([]byte(name))
		name = svc[:min(len(svc), 200)] + "-" + hex.EncodeToString(all[:8])
	}
	return name
}

// slotOf returns the slot and attempt labels of a service task.
func slotOf(task *ecsv1alpha1.Task) (slot, attempt int, ok bool) {
	s, err1 := strconv.Atoi(task.Labels[LabelSlot])
	a, err2 := strconv.Atoi(task.Labels[LabelAttempt])
	return s, a, err1 == nil && err2 == nil
}

// active reports whether a task counts towards the service: it should run and has not stopped.
func active(task *ecsv1alpha1.Task) bool {
	return task.Spec.DesiredStatus != ecsv1alpha1.TaskDesiredStopped && task.Status.LastStatus != ecsv1alpha1.TaskStateStopped &&
		task.DeletionTimestamp.IsZero()
}

// slotPlan decides where new tasks go: the `need` lowest slots without an active task, each with
// the attempt after the highest seen in that slot.
func slotPlan(tasks []ecsv1alpha1.Task, revision string, need int) [][2]int {
	busy := map[int]bool{}
	nextAttempt := map[int]int{}
	for i := range tasks {
		t := &tasks[i]
		if t.Spec.TaskDefinitionRevision != revision {
			continue
		}
		s, a, ok := slotOf(t)
		if !ok {
			continue
		}
		if active(t) {
			busy[s] = true
		}
		if a+1 > nextAttempt[s] {
			nextAttempt[s] = a + 1
		}
	}
	var plan [][2]int
	for s := 0; len(plan) < need; s++ {
		if !busy[s] {
			plan = append(plan, [2]int{s, nextAttempt[s]})
		}
	}
	return plan
}
