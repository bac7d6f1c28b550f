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

package framework

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

// TestImageRepository is the repository of the image TestImage builds.
const TestImageRepository = "drover-testapp"

// TestLabel marks the containers and images tests create, so that leftovers can be found with
// `docker ps -a --filter label=drover.test=1`.
const TestLabel = "drover.test"

var (
	testImageOnce sync.Once
	testImageRef  string
	testImageErr  error
)

// DockerClient returns a client of the Docker Engine at DOCKER_HOST (or the default socket) that
// is closed when the test ends. It skips the test when no engine answers a ping within 5s.
func DockerClient(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatalf("creating a Docker client (check DOCKER_HOST and the other DOCKER_* variables): %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		t.Skipf("no Docker Engine at %s answered within 5s: %v", c.DaemonHost(), err)
	}
	return c
}

// TestImage returns the reference of the test image, drover-testapp:<first 12 hex digits of the
// sha256 of its binary>, built from ./test/images/testapp for the Docker Engine's architecture.
// It builds at most once per test process, and not at all when the engine already has the image;
// later calls return the same reference, or fail with the same error. It skips the test when no
// Docker Engine answers.
func TestImage(t testing.TB) string {
	t.Helper()
	c := DockerClient(t)
	testImageOnce.Do(func() { testImageRef, testImageErr = buildTestImage(context.Background(), c) })
	if testImageErr != nil {
		t.Fatal(testImageErr)
	}
	return testImageRef
}

// BuildTestImage builds the test image as TestImage does, for programs that are not tests (the
// benchmarks): with the Docker Engine at DOCKER_HOST (or the default socket), not at all when the
// engine already has the image, and from the drover module around the working directory. It
// returns the image's reference. Unlike TestImage, it looks for the image (and builds it when
// missing) on every call.
func BuildTestImage(ctx context.Context) (string, error) {
	c, err := client.New(client.FromEnv)
	if err != nil {
		return "", fmt.Errorf("creating a Docker client (check DOCKER_HOST and the other DOCKER_* variables): %w", err)
	}
	defer c.Close()
	return buildTestImage(ctx, c)
}

func buildTestImage(parent context.Context, c *client.Client) (string, error) {
	ctx, cancel := context.WithTimeout(parent, 30*time.Second)
	defer cancel()
	v, err := c.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", fmt.Errorf("asking the Docker Engine for its version: %w", err)
	}
	if v.Os != "linux" {
		return "", fmt.Errorf("the test image needs a Linux Docker Engine, the one at %s runs %s", c.DaemonHost(), v.Os)
	}

	bin, err := buildTestApp(v.Arch)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(bin)
	ref := TestImageRepository + ":" + hex.EncodeToString(sum[:])[:12]

	if _, err := c.ImageInspect(ctx, ref); err == nil {
		return ref, nil
	} else if !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("looking for image %s: %w", ref, err)
	}

	buildCtx, err := testImageContext(bin)
	if err != nil {
		return "", err
	}
	bctx, bcancel := context.WithTimeout(parent, 5*time.Minute)
	defer bcancel()
	res, err := c.ImageBuild(bctx, buildCtx, client.ImageBuildOptions{
		Tags:        []string{ref},
		Labels:      map[string]string{TestLabel: "1"},
		Remove:      true,
		ForceRemove: true,
		// The classic builder needs no BuildKit session, and is what Docker 20.10 runs by default.
		Version: build.BuilderV1,
	})
	if err != nil {
		return "", fmt.Errorf("building image %s: %w", ref, err)
	}
	out, err := readJSONStream(res.Body)
	res.Body.Close()
	if err != nil {
		return "", fmt.Errorf("building image %s: %w\nbuild output:\n%s", ref, err, out)
	}
	if _, err := c.ImageInspect(ctx, ref); err != nil {
		return "", fmt.Errorf("image %s is missing after a build that reported no error: %w\nbuild output:\n%s", ref, err, out)
	}
	return ref, nil
}

// buildTestApp compiles ./test/images/testapp as a static Linux binary for arch and returns it.
// -trimpath and -buildvcs=false keep the binary, and so the image tag, the same for the same
// source in any checkout and at any commit.
func buildTestApp(arch string) ([]byte, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "drover-testapp-")
	if err != nil {
		return nil, fmt.Errorf("creating a directory for the testapp binary: %w", err)
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := filepath.Join(dir, "testapp")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w",
		"-o", out, "./test/images/testapp")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./test/images/testapp for linux/%s in %s: %v\n%s", arch, root, err, msg)
	}
	return os.ReadFile(out)
}

// moduleRoot is the directory of the main module's go.mod, as the go command sees it from the
// test's working directory.
func moduleRoot() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD (is the go command on PATH?): %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD found no go.mod: run the tests from inside the drover module")
	}
	return filepath.Dir(gomod), nil
}

// testImageContext is the build context of the test image: a Dockerfile and the binary.
func testImageContext(bin []byte) (io.Reader, error) {
	dockerfile := []byte("FROM scratch\nCOPY testapp /testapp\nENTRYPOINT [\"/testapp\"]\n")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, dockerfile}, {"testapp", 0o755, bin}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return nil, fmt.Errorf("writing the build context: %w", err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("writing the build context: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("writing the build context: %w", err)
	}
	return &buf, nil
}

// streamMessage is one message of a build, push or pull stream. Engines put a failure in
// errorDetail and repeat its text in error.
type streamMessage struct {
	jsonstream.Message
	ErrorText string `json:"error,omitempty"`
}

// readJSONStream reads a build, push or pull progress stream to its end and returns its text
// output, and the first error a message in it reports.
func readJSONStream(r io.Reader) (string, error) {
	var out strings.Builder
	dec := json.NewDecoder(r)
	for {
		var m streamMessage
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return out.String(), nil
		} else if err != nil {
			return out.String(), fmt.Errorf("reading the engine's progress stream: %w", err)
		}
		switch {
		case m.Error != nil && m.Error.Message != "":
			return out.String(), m.Error
		case m.ErrorText != "":
			return out.String(), errors.New(m.ErrorText)
		case m.Stream != "":
			out.WriteString(m.Stream)
		case m.Status != "" && m.Progress == nil: // progress bars would swamp the text
			if m.ID != "" {
				out.WriteString(m.ID + ": ")
			}
			out.WriteString(m.Status + "\n")
		}
	}
}
