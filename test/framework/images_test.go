/*
Copyright 2026 The Drover Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package framework_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/drover-dev/drover/test/framework"
)

func TestTestImageServesHTTP(t *testing.T) {
	ref := framework.TestImage(t)
	if again := framework.TestImage(t); again != ref {
		t.Fatalf("second TestImage = %q, first %q", again, ref)
	}
	if !strings.HasPrefix(ref, framework.TestImageRepository+":") {
		t.Fatalf("TestImage = %q, want a tag of %s", ref, framework.TestImageRepository)
	}
	c := framework.DockerClient(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	port := network.MustParsePort("8080/tcp")
	probe := []string{"CMD", "/testapp", "probe", "http://127.0.0.1:8080/healthz"}
	created, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image:        ref,
			Cmd:          []string{"serve", "hello"},
			Env:          []string{"GREETING=hi"},
			Labels:       map[string]string{framework.TestLabel: "1"},
			ExposedPorts: network.PortSet{port: {}},
			Healthcheck:  &container.HealthConfig{Test: probe, Interval: 100 * time.Millisecond, Retries: 3},
		},
		HostConfig: &container.HostConfig{
			PortBindings: network.PortMap{port: {{HostIP: netip.MustParseAddr("127.0.0.1")}}},
		},
	})
	if err != nil {
		t.Fatalf("creating a container of %s: %v", ref, err)
	}
	t.Cleanup(func() { removeContainer(t, c, created.ID) })
	if _, err := c.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("starting the container: %v", err)
	}
	inspect, err := c.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspecting the container: %v", err)
	}
	bindings := inspect.Container.NetworkSettings.Ports[port]
	if len(bindings) == 0 {
		t.Fatalf("port %s is not published: %+v", port, inspect.Container.NetworkSettings.Ports)
	}
	base := fmt.Sprintf("http://127.0.0.1:%s", bindings[0].HostPort)

	var got struct {
		Hostname string            `json:"hostname"`
		PID      int               `json:"pid"`
		Env      map[string]string `json:"env"`
		Args     []string          `json:"args"`
	}
	body := getWhenUp(t, base+"/")
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("GET / returned %q: %v", body, err)
	}
	if got.PID != 1 || got.Env["GREETING"] != "hi" || !slices.Equal(got.Args, []string{"serve", "hello"}) ||
		!strings.HasPrefix(created.ID, got.Hostname) {
		t.Errorf("GET / = %+v, want pid 1, GREETING=hi, args [serve hello], hostname a prefix of %s", got, created.ID)
	}

	// The probe subcommand works as a HEALTHCHECK in the shell-less image.
	waitFor(t, 30*time.Second, "the container to be healthy", func() (bool, string) {
		in, err := c.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
		if err != nil {
			return false, err.Error()
		}
		h := in.Container.State.Health
		if h == nil {
			return false, "no health state"
		}
		return h.Status == container.Healthy, fmt.Sprintf("%s, failing streak %d", h.Status, h.FailingStreak)
	})

	// POST /exit ends the container with the code asked for.
	wait := c.ContainerWait(ctx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	resp, err := http.Post(base+"/exit?code=3", "", nil)
	if err != nil {
		t.Fatalf("POST /exit: %v", err)
	}
	resp.Body.Close()
	select {
	case res := <-wait.Result:
		if res.StatusCode != 3 {
			t.Errorf("container exited with %d, want 3", res.StatusCode)
		}
	case err := <-wait.Error:
		t.Fatalf("waiting for the container to exit: %v", err)
	}

	logs, err := c.ContainerLogs(ctx, created.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("reading the container's logs: %v", err)
	}
	defer logs.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, logs); err != nil {
		t.Fatalf("reading the container's logs: %v", err)
	}
	for _, want := range []string{"listening on :8080", "GET / 200", "POST /exit?code=3 200", "exiting with code 3"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "testapp starting") {
		t.Errorf("stderr lacks the start line:\n%s", stderr.String())
	}
}

func TestRegistryPushPullWithCredentials(t *testing.T) {
	reg := framework.StartRegistry(t, framework.RegistryOptions{Username: "drover", Password: "s3cret"})
	c := framework.DockerClient(t)
	ref := reg.Push(t, framework.TestImage(t), "team/testapp:v1")
	if want := reg.Host + "/team/testapp:v1"; ref != want {
		t.Fatalf("Push returned %q, want %q", ref, want)
	}
	if n := reg.Pulls(); n != 0 {
		t.Errorf("Pulls after a push = %d, want 0", n)
	}
	assertNoImage(t, c, ref)

	// The registry asks for Basic credentials the way the engine expects.
	resp, err := http.Get("http://" + reg.Host + "/v2/")
	if err != nil {
		t.Fatalf("GET /v2/: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Basic realm="drover-test"` {
		t.Errorf("GET /v2/ without credentials = %s, WWW-Authenticate %q", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}

	wrong := (&framework.Registry{Host: reg.Host, Username: reg.Username, Password: "wrong"}).RegistryAuth()
	for name, auth := range map[string]string{"no credentials": "", "a wrong password": wrong} {
		err := pull(t, c, ref, auth)
		if err == nil {
			t.Fatalf("pull with %s succeeded", name)
		}
		if !strings.Contains(strings.ToLower(err.Error()), "auth") {
			t.Errorf("pull with %s failed for another reason than credentials: %v", name, err)
		}
		t.Logf("pull with %s: %v", name, err)
		assertNoImage(t, c, ref)
	}
	if n := reg.Pulls(); n != 0 {
		t.Errorf("Pulls after refused pulls = %d, want 0", n)
	}

	t.Cleanup(func() { removeImage(t, c, ref) })
	if err := pull(t, c, ref, reg.RegistryAuth()); err != nil {
		t.Fatalf("pull with credentials: %v", err)
	}
	if n := reg.Pulls(); n < 1 {
		t.Errorf("Pulls after a pull = %d, want at least 1", n)
	}
	assertSameImage(t, c, ref, framework.TestImage(t))
}

func TestRegistryWithoutCredentialsCountsPulls(t *testing.T) {
	reg := framework.StartRegistry(t, framework.RegistryOptions{})
	c := framework.DockerClient(t)
	ref := reg.Push(t, framework.TestImage(t), "testapp:latest")
	t.Cleanup(func() { removeImage(t, c, ref) })
	for i := 1; i <= 2; i++ {
		before := reg.Pulls()
		if err := pull(t, c, ref, ""); err != nil {
			t.Fatalf("pull %d: %v", i, err)
		}
		// A pull of an image the engine already has still resolves the tag in the registry.
		if after := reg.Pulls(); after <= before {
			t.Errorf("pull %d: Pulls went from %d to %d", i, before, after)
		}
	}
	assertSameImage(t, c, ref, framework.TestImage(t))
}

// pull pulls ref through the engine and returns the error the engine reports, if any.
func pull(t *testing.T, c *client.Client, ref, auth string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	resp, err := c.ImagePull(ctx, ref, client.ImagePullOptions{RegistryAuth: auth})
	if err != nil {
		return err
	}
	return resp.Wait(ctx)
}

func assertNoImage(t *testing.T, c *client.Client, ref string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := c.ImageInspect(ctx, ref); !cerrdefs.IsNotFound(err) {
		t.Fatalf("the engine has image %s (inspect error %v); the pull would not reach the registry", ref, err)
	}
}

func assertSameImage(t *testing.T, c *client.Client, a, b string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ia, err := c.ImageInspect(ctx, a)
	if err != nil {
		t.Fatalf("inspecting %s: %v", a, err)
	}
	ib, err := c.ImageInspect(ctx, b)
	if err != nil {
		t.Fatalf("inspecting %s: %v", b, err)
	}
	if ia.ID != ib.ID {
		t.Errorf("%s is image %s, %s is %s; want the same", a, ia.ID, b, ib.ID)
	}
}

func removeImage(t *testing.T, c *client.Client, ref string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.ImageRemove(ctx, ref, client.ImageRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		t.Errorf("removing image %s: %v", ref, err)
	}
}

func removeContainer(t *testing.T, c *client.Client, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		t.Errorf("removing container %s: %v", id, err)
	}
}

// getWhenUp GETs url until it answers 200 and returns the body.
func getWhenUp(t *testing.T, url string) []byte {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	var body []byte
	waitFor(t, 30*time.Second, "GET "+url, func() (bool, string) {
		resp, err := hc.Get(url)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, err = io.ReadAll(resp.Body)
		if err != nil {
			return false, err.Error()
		}
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return body
}

// waitFor polls cond every 100ms until it holds, and fails the test with cond's last explanation
// after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: still not after %s: %s", what, timeout, why)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("waiting for %s: %v", what, t.Context().Err())
		case <-tick.C:
		}
	}
}
