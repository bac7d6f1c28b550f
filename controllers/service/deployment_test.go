package service

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

func TestBreakerThreshold(t *testing.T) {
	for _, tc := range []struct{ desired, want int32 }{
		{0, 10}, {1, 10}, {4, 10}, {20, 10}, // half of desiredCount, but at least 10
		{21, 11}, {22, 11}, {100, 50}, {399, 200},
		{400, 200}, {401, 200}, {1000, 200}, // and at most 200
	} {
		if got := breakerThreshold(tc.desired); got != tc.want {
			t.Errorf("breakerThreshold(%d) = %d, want %d", tc.desired, got, tc.want)
		}
	}
}

func TestBreakerFailures(t *testing.T) {
	started := &metav1.Time{}
	task := func(rev string, last ecsv1alpha1.TaskState, desired ecsv1alpha1.TaskDesiredStatus, ran, unhealthy bool) ecsv1alpha1.Task {
		tk := ecsv1alpha1.Task{
			Spec:   ecsv1alpha1.TaskSpec{TaskDefinitionRevision: rev, DesiredStatus: desired},
			Status: ecsv1alpha1.TaskStatus{LastStatus: last},
		}
		if ran {
			tk.Status.StartedAt = started
		}
		if unhealthy {
			tk.Annotations = map[string]string{AnnotationFailedHealthChecks: "true"}
		}
		return tk
	}
	const (
		stopped = ecsv1alpha1.TaskStateStopped
		running = ecsv1alpha1.TaskStateRunning
		pending = ecsv1alpha1.TaskStatePending
		keep    = ecsv1alpha1.TaskDesiredRunning
		stop    = ecsv1alpha1.TaskDesiredStopped
	)
	failedStart := task("web-2", stopped, keep, false, false)
	failedCheck := task("web-2", stopped, stop, true, true)
	for _, tc := range []struct {
		name       string
		tasks      []ecsv1alpha1.Task
		want       int32
		wantStage2 bool
	}{
		{"nothing yet", []ecsv1alpha1.Task{task("web-2", pending, keep, false, false)}, 0, false},
		{"stage 1 counts tasks that stopped before running",
			[]ecsv1alpha1.Task{failedStart, failedStart, task("web-2", pending, keep, false, false)}, 2, false},
		{"a task the service stopped before it ran is no failure",
			[]ecsv1alpha1.Task{failedStart, task("web-2", stopped, stop, false, false)}, 1, false},
		{"other revisions do not count",
			[]ecsv1alpha1.Task{failedStart, task("web-1", stopped, keep, false, false), task("web-1", stopped, stop, true, true)}, 1, false},
		{"once a task ran, stage 2 counts failed health checks only",
			[]ecsv1alpha1.Task{failedStart, failedStart, failedCheck, task("web-2", running, keep, true, false)}, 1, true},
		{"a task stopped for failing health checks has run",
			[]ecsv1alpha1.Task{failedStart, failedCheck, failedCheck}, 2, true},
		{"stage 2 without failures",
			[]ecsv1alpha1.Task{task("web-2", running, keep, true, false), task("web-2", stopped, stop, true, false)}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, stage2 := breakerFailures(tc.tasks, "web-2")
			if got != tc.want || stage2 != tc.wantStage2 {
				t.Errorf("breakerFailures = %d, stage2 %v; want %d, stage2 %v", got, stage2, tc.want, tc.wantStage2)
			}
		})
	}
}
