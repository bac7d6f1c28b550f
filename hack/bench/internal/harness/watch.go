package harness

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

// FollowTasks watches the Tasks opts select from resourceVersion rv until ctx ends, resuming
// where a watch ended, and calls observe with each added or modified Task and when it arrived.
func FollowTasks(ctx context.Context, c client.WithWatch, rv string, observe func(*ecsv1alpha1.Task, time.Time), opts ...client.ListOption) error {
	for ctx.Err() == nil {
		wi, err := c.Watch(ctx, &ecsv1alpha1.TaskList{},
			append(opts, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})...)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watching Tasks: %w", err)
		}
		for ev := range wi.ResultChan() {
			switch ev.Type {
			case watch.Error:
				wi.Stop()
				return fmt.Errorf("watching Tasks: %v", apierrors.FromObject(ev.Object))
			case watch.Added, watch.Modified, watch.Bookmark:
				task, ok := ev.Object.(*ecsv1alpha1.Task)
				if !ok {
					continue
				}
				rv = task.ResourceVersion
				if ev.Type != watch.Bookmark {
					observe(task, time.Now())
				}
			}
		}
		wi.Stop()
	}
	return nil
}
