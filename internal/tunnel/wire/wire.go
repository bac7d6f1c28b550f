// Package wire is the protocol of the tunnel that drover-agent opens to droverd, shared by
// droverd, drover-agent and the drover CLI: the API paths, the upgrade handshake, and the requests
// droverd sends to the agent over the tunnel. It imports only the standard library, so that the
// agent can use it without linking the API server.
//
// Agents only dial out, so droverd cannot connect to them. Instead each agent opens one
// connection to droverd, authenticated with its instance certificate, and upgrades it from
// HTTP/1.1: from then on droverd is the HTTP/2 client on that connection and the agent the HTTP/2
// server, and droverd sends its requests for the instance (today: a container's logs) to the agent
// through it.
package wire

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

const (
	// Protocol is the token of the Upgrade header that opens a tunnel.
	Protocol = "drover-tunnel/1"

	// Group and Version are the API group and version the tunnel and log paths belong to.
	Group   = "ecs.drover.dev"
	Version = "v1alpha1"

	// TunnelSubresource is the subresource of a ContainerInstance its agent opens the tunnel at,
	// with a POST that asks to upgrade the connection.
	TunnelSubresource = "tunnel"
	// LogSubresource is the subresource of a Task that streams a container's output, with a GET.
	LogSubresource = "log"

	// LogsPath is the path droverd requests from the agent over the tunnel, with the query
	// LogsRequest.Query builds.
	LogsPath = "/logs"
)

// Query parameters of the task log subresource, named as those of a Kubernetes pod's log.
const (
	// ParamContainer names the task's container; it may be left out when the task has only one.
	ParamContainer = "container"
	// ParamFollow, when true, keeps streaming new output until the client goes away.
	ParamFollow = "follow"
	// ParamTailLines is how many lines from the end to show, at least 1; absent shows all.
	ParamTailLines = "tailLines"
	// ParamTimestamps, when true, starts each line with the time it was written (RFC 3339).
	ParamTimestamps = "timestamps"
)

// apiPrefix is where the group's namespaced resources are served.
const apiPrefix = "/apis/" + Group + "/" + Version + "/namespaces/"

// TunnelPath is the path the agent of container instance namespace/name opens its tunnel at.
func TunnelPath(namespace, name string) string {
	return apiPrefix + url.PathEscape(namespace) + "/containerinstances/" + url.PathEscape(name) + "/" + TunnelSubresource
}

// TaskLogPath is the path of the logs of task namespace/name.
func TaskLogPath(namespace, name string) string {
	return apiPrefix + url.PathEscape(namespace) + "/tasks/" + url.PathEscape(name) + "/" + LogSubresource
}

// LogsRequest is what droverd asks an agent for over the tunnel: the output of one container of a
// task, as the container's labels name it.
type LogsRequest struct {
	// Namespace, Task and UID identify the task; UID keeps a task that was deleted and created
	// again under the same name from showing the old one's output.
	Namespace, Task, UID string
	// Container is the container's name in the task.
	Container string
	// Follow keeps streaming new output.
	Follow bool
	// Tail is how many lines from the end to show; 0 shows all.
	Tail int
	// Timestamps starts each line with the time it was written.
	Timestamps bool
}

// Query encodes r as the query of a request to LogsPath.
func (r LogsRequest) Query() url.Values {
	q := url.Values{}
	q.Set("namespace", r.Namespace)
	q.Set("task", r.Task)
	q.Set("uid", r.UID)
	q.Set("container", r.Container)
	if r.Follow {
		q.Set("follow", "true")
	}
	if r.Tail > 0 {
		q.Set("tail", strconv.Itoa(r.Tail))
	}
	if r.Timestamps {
		q.Set("timestamps", "true")
	}
	return q
}

// ParseLogsRequest decodes the query of a request to LogsPath.
func ParseLogsRequest(q url.Values) (LogsRequest, error) {
	r := LogsRequest{Namespace: q.Get("namespace"), Task: q.Get("task"), UID: q.Get("uid"), Container: q.Get("container")}
	var missing []string
	for _, p := range []struct{ name, value string }{{"namespace", r.Namespace}, {"task", r.Task}, {"uid", r.UID}, {"container", r.Container}} {
		if p.value == "" {
			missing = append(missing, p.name)
		}
	}
	if len(missing) > 0 {
		return LogsRequest{}, fmt.Errorf("the logs request lacks %s", strings.Join(missing, ", "))
	}
	var err error
	if r.Follow, err = ParseBool(q, "follow"); err != nil {
		return LogsRequest{}, err
	}
	if r.Timestamps, err = ParseBool(q, "timestamps"); err != nil {
		return LogsRequest{}, err
	}
	if v := q.Get("tail"); v != "" {
		if r.Tail, err = strconv.Atoi(v); err != nil || r.Tail < 1 {
			return LogsRequest{}, fmt.Errorf("tail=%q is not a number of lines of at least 1", v)
		}
	}
	return r, nil
}

// ParseBool reads the boolean query parameter name: absent is false.
func ParseBool(q url.Values, name string) (bool, error) {
	v := q.Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q is not a boolean: use true or false", name, v)
	}
	return b, nil
}
