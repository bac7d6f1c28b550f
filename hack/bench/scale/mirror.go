package main

import (
	"context"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

// follow lists and then watches the objects of a list type in the namespace until ctx ends,
// resuming each watch where the last one ended, listing again when that resourceVersion has
// expired, and retrying every second while droverd does not answer (it may be restarting). Each
// list's items go to onList, each watch event to onEvent, with when they were seen.
func follow(ctx context.Context, c client.WithWatch, newList func() client.ObjectList,
	onList func(items []client.Object, at time.Time), onEvent func(obj client.Object, deleted bool, at time.Time)) {
	rv := ""
	for ctx.Err() == nil {
		if rv == "" {
			list := newList()
			if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
				sleepCtx(ctx, time.Second)
				continue
			}
			objs, err := meta.ExtractList(list)
			if err != nil {
				return
			}
			items := make([]client.Object, 0, len(objs))
			for _, o := range objs {
				items = append(items, o.(client.Object))
			}
			onList(items, time.Now())
			rv = list.GetResourceVersion()
		}
		w, err := c.Watch(ctx, newList(), client.InNamespace(namespace),
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
		if err != nil {
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				rv = ""
			}
			sleepCtx(ctx, time.Second)
			continue
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				if err := apierrors.FromObject(ev.Object); apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
					rv = ""
				}
				break
			}
			obj, ok := ev.Object.(client.Object)
			if !ok {
				continue
			}
			rv = obj.GetResourceVersion()
			if ev.Type != watch.Bookmark {
				onEvent(obj, ev.Type == watch.Deleted, time.Now())
			}
		}
		w.Stop()
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// taskInfo is what the scenarios look at in a Task.
type taskInfo struct {
	uid            types.UID
	service        string
	instance       string
	last           ecsv1alpha1.TaskState
	desiredStopped bool
}

// running is a Task that is RUNNING and meant to stay so.
func (t taskInfo) running() bool {
	return t.last == ecsv1alpha1.TaskStateRunning && !t.desiredStopped
}

// tasks mirrors the namespace's Tasks from a watch.
type tasks struct {
	mu    sync.Mutex
	byKey map[string]taskInfo
	// synced is closed after the first list.
	synced chan struct{}
	once   sync.Once
}

func watchTasks(ctx context.Context, c client.WithWatch) *tasks {
	t := &tasks{byKey: map[string]taskInfo{}, synced: make(chan struct{})}
	go follow(ctx, c, func() client.ObjectList { return &ecsv1alpha1.TaskList{} },
		func(items []client.Object, _ time.Time) {
			m := make(map[string]taskInfo, len(items))
			for _, o := range items {
				m[o.GetName()] = infoOf(o.(*ecsv1alpha1.Task))
			}
			t.mu.Lock()
			t.byKey = m
			t.mu.Unlock()
			t.once.Do(func() { close(t.synced) })
		},
		func(o client.Object, deleted bool, _ time.Time) {
			t.mu.Lock()
			defer t.mu.Unlock()
			if deleted {
				delete(t.byKey, o.GetName())
				return
			}
			t.byKey[o.GetName()] = infoOf(o.(*ecsv1alpha1.Task))
		})
	return t
}

func infoOf(task *ecsv1alpha1.Task) taskInfo {
	return taskInfo{uid: task.UID, service: task.Labels[ecsv1alpha1.LabelService], instance: task.Spec.ContainerInstance,
		last: task.Status.LastStatus, desiredStopped: task.Spec.DesiredStatus == ecsv1alpha1.TaskDesiredStopped}
}

// snapshot copies the Tasks known now, by name.
func (t *tasks) snapshot() map[string]taskInfo {
	<-t.synced
	t.mu.Lock()
	defer t.mu.Unlock()
	m := make(map[string]taskInfo, len(t.byKey))
	for k, v := range t.byKey {
		m[k] = v
	}
	return m
}

// instanceEvent is a change of an instance's connection as a watch saw it.
type instanceEvent struct {
	name      string
	connected bool
	at        time.Time
}

// instances mirrors whether each ContainerInstance is connected, and records every change.
// An instance is connected when status.agentConnected is true and its Connected condition is
// True; disconnected when either says otherwise.
type instances struct {
	mu        sync.Mutex
	connected map[string]bool
	events    []instanceEvent
	synced    chan struct{}
	once      sync.Once
}

func watchInstances(ctx context.Context, c client.WithWatch) *instances {
	in := &instances{connected: map[string]bool{}, synced: make(chan struct{})}
	set := func(o client.Object, at time.Time) {
		ci := o.(*ecsv1alpha1.ContainerInstance)
		now := ci.Status.AgentConnected && meta.IsStatusConditionTrue(ci.Status.Conditions, ecsv1alpha1.ContainerInstanceConditionConnected)
		if was, seen := in.connected[ci.Name]; !seen || was != now {
			in.events = append(in.events, instanceEvent{name: ci.Name, connected: now, at: at})
		}
		in.connected[ci.Name] = now
	}
	go follow(ctx, c, func() client.ObjectList { return &ecsv1alpha1.ContainerInstanceList{} },
		func(items []client.Object, at time.Time) {
			in.mu.Lock()
			for _, o := range items {
				set(o, at)
			}
			in.mu.Unlock()
			in.once.Do(func() { close(in.synced) })
		},
		func(o client.Object, deleted bool, at time.Time) {
			in.mu.Lock()
			defer in.mu.Unlock()
			if deleted {
				delete(in.connected, o.GetName())
				return
			}
			set(o, at)
		})
	return in
}

// countConnected counts the instances connected now.
func (in *instances) countConnected() int {
	<-in.synced
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for _, ok := range in.connected {
		if ok {
			n++
		}
	}
	return n
}

// since returns the changes seen at or after t.
func (in *instances) since(t time.Time) []instanceEvent {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []instanceEvent
	for _, e := range in.events {
		if !e.at.Before(t) {
			out = append(out, e)
		}
	}
	return out
}
