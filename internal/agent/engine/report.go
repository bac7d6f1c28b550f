package engine

import (
	"context"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

// reportedStatus is the part of a Task's status the agent owns; conditions belong to the
// controllers and are left as they are.
type reportedStatus struct {
	ObservedGeneration int64                         `json:"observedGeneration,omitempty"`
	LastStatus         ecsv1alpha1.TaskState         `json:"lastStatus,omitempty"`
	HealthStatus       ecsv1alpha1.HealthStatus      `json:"healthStatus,omitempty"`
	StopCode           ecsv1alpha1.TaskStopCode      `json:"stopCode,omitempty"`
	StoppedReason      string                        `json:"stoppedReason,omitempty"`
	Containers         []ecsv1alpha1.ContainerStatus `json:"containers,omitempty"`
	PullStartedAt      any                           `json:"pullStartedAt,omitempty"`
	PullStoppedAt      any                           `json:"pullStoppedAt,omitempty"`
	StartedAt          any                           `json:"startedAt,omitempty"`
	StoppingAt         any                           `json:"stoppingAt,omitempty"`
	ExecutionStoppedAt any                           `json:"executionStoppedAt,omitempty"`
	StoppedAt          any                           `json:"stoppedAt,omitempty"`
}

func statusPatch(st *ecsv1alpha1.TaskStatus) ([]byte, error) {
	r := reportedStatus{
		ObservedGeneration: st.ObservedGeneration, LastStatus: st.LastStatus, HealthStatus: st.HealthStatus,
		StopCode: st.StopCode, StoppedReason: truncate(st.StoppedReason, 1024), Containers: st.Containers,
	}
	for _, f := range []struct {
		dst *any
		src interface{ IsZero() bool }
	}{
		{&r.PullStartedAt, st.PullStartedAt}, {&r.PullStoppedAt, st.PullStoppedAt}, {&r.StartedAt, st.StartedAt},
		{&r.StoppingAt, st.StoppingAt}, {&r.ExecutionStoppedAt, st.ExecutionStoppedAt}, {&r.StoppedAt, st.StoppedAt},
	} {
		if !f.src.IsZero() {
			*f.dst = f.src
		}
	}
	for i := range r.Containers {
		r.Containers[i].Reason = truncate(r.Containers[i].Reason, 1024)
	}
	return json.Marshal(map[string]any{"status": r})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// reportNext writes one task's status to the control plane. Reports that fail stay queued (and
// on disk, as the record's Reported flag) and are retried with backoff: while the control plane
// is unreachable the latest status of each task waits, and on reconnection each task's report
// says everything that happened meanwhile (restart counts, exit codes, a stop).
func (e *Engine) reportNext(ctx context.Context) bool {
	uid, quit := e.reports.Get()
	if quit {
		return false
	}
	defer e.reports.Done(uid)
	err := e.report(ctx, uid)
	if err != nil {
		if ctx.Err() == nil {
			klog.FromContext(ctx).V(1).Info("Cannot report task status; will retry", "taskUID", uid, "err", err)
		}
		e.reports.AddRateLimited(uid)
		return true
	}
	e.reports.Forget(uid)
	return true
}

func (e *Engine) report(ctx context.Context, uid string) error {
	e.mu.Lock()
	rec, err := e.store.getTask(uid)
	e.mu.Unlock()
	if err != nil || rec == nil || rec.Reported || rec.Gone {
		return err
	}
	sent := rec.Task.Status
	body, err := statusPatch(&sent)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
	defer cancel()
	t := &ecsv1alpha1.Task{}
	t.Namespace, t.Name = rec.Task.Namespace, rec.Task.Name
	// The uid precondition keeps a report from landing on a new Task of the same name.
	body, err = withUIDPrecondition(body, rec.Task.UID)
	if err != nil {
		return err
	}
	err = e.cfg.Client.Status().Patch(rctx, t, client.RawPatch(types.MergePatchType, body))
	switch {
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		// Deleted, or replaced by a new Task of the same name (the uid precondition failed).
		e.markGone(uid)
		e.queue.Add(uid)
		return nil
	case apierrors.IsForbidden(err):
		// Never a reason to stop anything: a control plane that has just started refuses
		// instance identities until it can check them, and a deregistered instance's tasks keep
		// running until the host's operator stops the agent. The report is retried.
		return fmt.Errorf("reporting status of task %s: %w", taskKey(&rec.Task), err)
	case err != nil:
		return fmt.Errorf("reporting status of task %s: %w", taskKey(&rec.Task), err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cur, err := e.store.getTask(uid)
	if err != nil || cur == nil {
		return err
	}
	if equality.Semantic.DeepEqual(cur.Task.Status, sent) {
		cur.Reported = true
		return e.store.putTask(cur)
	}
	return nil
}

// withUIDPrecondition adds metadata.uid to a merge patch: the server refuses it with 409 when the
// object's uid differs.
func withUIDPrecondition(body []byte, uid types.UID) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	m["metadata"] = map[string]any{"uid": string(uid)}
	return json.Marshal(m)
}

func (e *Engine) markGone(uid string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rec, err := e.store.getTask(uid)
	if err != nil || rec == nil || rec.Gone {
		return
	}
	rec.Gone = true
	_ = e.store.putTask(rec)
}

// reportPending queues every unreported status, after the control plane came back.
func (e *Engine) reportPending() {
	recs, _ := e.store.tasks()
	for _, r := range recs {
		if !r.Reported && !r.Gone {
			e.reports.Forget(string(r.Task.UID))
			e.reports.Add(string(r.Task.UID))
		}
	}
}
