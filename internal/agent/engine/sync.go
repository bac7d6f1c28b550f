package engine

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/agent/backoff"
)

// watchTasks keeps e.api up to date with the Tasks bound to this instance: a list, then a watch
// from the list's resourceVersion, and a new list whenever the watch ends. The instance's identity
// may read only its own Tasks, so every request carries the field selector
// spec.containerInstance=<instance>. While the control plane cannot be reached, e.api keeps the
// last known Tasks and the engine keeps running them.
func (e *Engine) watchTasks(ctx context.Context) {
	log := klog.FromContext(ctx)
	b := backoff.Backoff{Min: time.Second, Max: 30 * time.Second}
	sel := client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("spec.containerInstance", e.cfg.ContainerInstance)}
	for ctx.Err() == nil {
		rv, err := e.listTasks(ctx, sel)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.V(1).Info("Cannot list this instance's tasks; trying again", "err", err)
			if !backoff.Sleep(ctx, b.Next()) {
				return
			}
			continue
		}
		b.Reset()
		if err := e.watchFrom(ctx, sel, rv); err != nil && ctx.Err() == nil {
			log.V(1).Info("Task watch ended; listing again", "err", err)
			if !backoff.Sleep(ctx, b.Next()) {
				return
			}
		}
	}
}

// listTasks replaces e.api with the listed Tasks and marks the records of Tasks that no longer
// exist as gone.
func (e *Engine) listTasks(ctx context.Context, sel client.MatchingFieldsSelector) (string, error) {
	lctx, cancel := context.WithTimeout(ctx, 4*e.cfg.RequestTimeout)
	defer cancel()
	list := &ecsv1alpha1.TaskList{}
	if err := e.cfg.Client.List(lctx, list, client.InNamespace(e.cfg.Namespace), sel); err != nil {
		return "", err
	}
	api := make(map[string]*ecsv1alpha1.Task, len(list.Items))
	for i := range list.Items {
		t := &list.Items[i]
		api[string(t.UID)] = t
	}
	e.mu.Lock()
	e.api = api
	e.mu.Unlock()
	for uid := range api {
		e.queue.Add(uid)
	}
	recs, err := e.store.tasks()
	if err != nil {
		klog.FromContext(ctx).Error(err, "Reading the task state")
	}
	for _, r := range recs {
		if _, ok := api[string(r.Task.UID)]; !ok && !r.Gone {
			e.queue.Add(string(r.Task.UID))
		}
	}
	e.syncedOnce.Do(func() { close(e.synced) })
	return list.ResourceVersion, nil
}

func (e *Engine) watchFrom(ctx context.Context, sel client.MatchingFieldsSelector, rv string) error {
	w, err := e.cfg.Client.Watch(ctx, &ecsv1alpha1.TaskList{}, client.InNamespace(e.cfg.Namespace), sel,
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
	if err != nil {
		return err
	}
	defer w.Stop()
	// Watches end now and then (the server's timeout, a load balancer); the list that follows
	// brings back anything missed.
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				if t, ok := ev.Object.(*ecsv1alpha1.Task); ok {
					e.mu.Lock()
					e.api[string(t.UID)] = t
					e.mu.Unlock()
					e.queue.Add(string(t.UID))
				}
			case watch.Deleted:
				if t, ok := ev.Object.(*ecsv1alpha1.Task); ok {
					e.mu.Lock()
					delete(e.api, string(t.UID))
					e.mu.Unlock()
					e.queue.Add(string(t.UID))
				}
			case watch.Error:
				return apierrors.FromObject(ev.Object)
			}
		}
	}
}

// apiTask returns the Task as last read from the control plane, and whether the engine knows
// for sure that it no longer exists there (it was listed since, without it).
func (e *Engine) apiTask(uid string) (t *ecsv1alpha1.Task, gone bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t = e.api[uid]
	if t != nil {
		return t.DeepCopy(), false
	}
	select {
	case <-e.synced:
		return nil, true
	default:
		return nil, false
	}
}
