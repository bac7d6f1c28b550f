package tunnel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/tunnel/wire"
)

var tasksResource = schema.GroupResource{Group: wire.Group, Resource: "tasks"}

// maxErrorBytes bounds how much of an agent's error answer is read.
const maxErrorBytes = 4096

// serveLogs streams the output of a container of task namespace/name from the agent of the
// instance the task is placed on, over that agent's tunnel.
func (s *Server) serveLogs(w http.ResponseWriter, r *http.Request, namespace, name string) {
	if r.Method != http.MethodGet {
		writeError(w, methodNotAllowed(r.Method, "logs are read with a GET"))
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	req := wire.LogsRequest{Namespace: namespace, Task: name}
	var err error
	if req.Follow, err = wire.ParseBool(q, wire.ParamFollow); err != nil {
		writeError(w, badRequest(err.Error()))
		return
	}
	if req.Timestamps, err = wire.ParseBool(q, wire.ParamTimestamps); err != nil {
		writeError(w, badRequest(err.Error()))
		return
	}
	if v := q.Get(wire.ParamTailLines); v != "" {
		if req.Tail, err = strconv.Atoi(v); err != nil || req.Tail < 1 {
			writeError(w, badRequest(fmt.Sprintf("%s=%q is not a number of lines of at least 1; leave it out for the whole log", wire.ParamTailLines, v)))
			return
		}
	}

	c, err := s.client()
	if err != nil {
		writeError(w, apierrors.NewServiceUnavailable(err.Error()))
		return
	}
	task := &ecsv1alpha1.Task{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, task); err != nil {
		if apierrors.IsNotFound(err) {
			writeError(w, apierrors.NewNotFound(tasksResource, name))
			return
		}
		writeError(w, internalError(fmt.Sprintf("reading task %s/%s: %v", namespace, name, err)))
		return
	}
	req.UID = string(task.UID)
	instance := task.Spec.ContainerInstance
	if instance == "" {
		writeError(w, badRequest(fmt.Sprintf("task %s is not placed on an instance yet, so it has no logs", name)))
		return
	}
	if req.Container, err = pickContainer(task, q.Get(wire.ParamContainer)); err != nil {
		writeError(w, err)
		return
	}

	t := s.get(namespace, instance)
	if t != nil {
		// A tunnel opened with the certificate of an instance that was deleted, even if one of the
		// same name registered since, is no tunnel to this instance.
		ci := &ecsv1alpha1.ContainerInstance{}
		err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: instance}, ci)
		switch {
		case apierrors.IsNotFound(err) || (err == nil && string(ci.UID) != t.uid):
			s.remove(t)
			t.close()
			t = nil
		case err != nil:
			writeError(w, internalError(fmt.Sprintf("reading container instance %s/%s: %v", namespace, instance, err)))
			return
		}
	}
	if t == nil {
		writeError(w, apierrors.NewServiceUnavailable(fmt.Sprintf(
			"the agent of instance %s is not connected (its logs travel over a connection the agent opens); check that drover-agent runs on the host and reaches droverd", instance)))
		return
	}

	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	areq, err := http.NewRequestWithContext(actx, http.MethodGet, "https://"+instance+wire.LogsPath+"?"+req.Query().Encode(), nil)
	if err != nil {
		writeError(w, internalError(err.Error()))
		return
	}
	late := time.AfterFunc(answerTimeout, cancel)
	resp, err := t.cc.RoundTrip(areq)
	if !late.Stop() && ctx.Err() == nil {
		if err == nil {
			resp.Body.Close()
		}
		writeError(w, statusError(http.StatusGatewayTimeout, fmt.Sprintf(
			"the agent of instance %s did not answer within %s; the host or its connection may be overloaded, try again", instance, answerTimeout)))
		return
	}
	if err != nil {
		if ctx.Err() == nil {
			writeError(w, apierrors.NewServiceUnavailable(fmt.Sprintf(
				"the agent of instance %s did not answer over its connection: %v; it reconnects by itself, try again in a moment", instance, err)))
		}
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
		msg := strings.TrimSpace(string(body))
		if msg == "" {
			msg = resp.Status
		}
		writeError(w, statusError(resp.StatusCode, fmt.Sprintf("instance %s: %s", instance, msg)))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if err := copyFlushing(w, resp.Body); err != nil && ctx.Err() == nil {
		klog.FromContext(ctx).V(1).Info("Log stream broke off", "task", klog.KObj(task), "container", req.Container, "err", err)
		// Abort the response, so that the client sees the stream broke off rather than ended.
		panic(http.ErrAbortHandler)
	}
}

// pickContainer returns the container of task that name names, or its only container when name is
// empty.
func pickContainer(task *ecsv1alpha1.Task, name string) (string, error) {
	names := make([]string, 0, len(task.Spec.Containers))
	for _, c := range task.Spec.Containers {
		names = append(names, c.Name)
	}
	switch {
	case len(names) == 0:
		return "", badRequest(fmt.Sprintf("task %s has no containers yet: its task definition is not resolved", task.Name))
	case name == "" && len(names) == 1:
		return names[0], nil
	case name == "":
		return "", badRequest(fmt.Sprintf("task %s has %d containers, choose one with container= (drover logs -c NAME): %s",
			task.Name, len(names), strings.Join(names, ", ")))
	}
	for _, n := range names {
		if n == name {
			return n, nil
		}
	}
	return "", badRequest(fmt.Sprintf("task %s has no container %q; its containers are: %s", task.Name, name, strings.Join(names, ", ")))
}

// copyFlushing copies src to w, flushing after each read so that followed output arrives as it is
// written.
func copyFlushing(w http.ResponseWriter, src io.Reader) error {
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if ferr := rc.Flush(); ferr != nil && !errors.Is(ferr, http.ErrNotSupported) {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// writeError answers err as a Kubernetes Status, which clients such as client-go turn back into
// an error with the same message.
func writeError(w http.ResponseWriter, err error) {
	var st metav1.Status
	var api apierrors.APIStatus
	if errors.As(err, &api) {
		st = api.Status()
	} else {
		st = apierrors.NewInternalError(err).Status()
	}
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(int(st.Code))
	_ = json.NewEncoder(w).Encode(st)
}

func badRequest(msg string) error { return apierrors.NewBadRequest(msg) }

func forbidden(msg string) error {
	return statusError(http.StatusForbidden, msg)
}

func internalError(msg string) error { return statusError(http.StatusInternalServerError, msg) }

func methodNotAllowed(method, msg string) error {
	return statusError(http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed: %s", method, msg))
}

// statusError is an error with an HTTP status code and exactly msg as its message.
func statusError(code int, msg string) error {
	reason := metav1.StatusReasonUnknown
	switch code {
	case http.StatusBadRequest:
		reason = metav1.StatusReasonBadRequest
	case http.StatusForbidden:
		reason = metav1.StatusReasonForbidden
	case http.StatusNotFound:
		reason = metav1.StatusReasonNotFound
	case http.StatusMethodNotAllowed:
		reason = metav1.StatusReasonMethodNotAllowed
	case http.StatusInternalServerError:
		reason = metav1.StatusReasonInternalError
	case http.StatusServiceUnavailable:
		reason = metav1.StatusReasonServiceUnavailable
	case http.StatusGatewayTimeout:
		reason = metav1.StatusReasonTimeout
	}
	return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: int32(code), Reason: reason, Message: msg}}
}
