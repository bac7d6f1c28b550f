package framework

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
)

var variants sync.Map // version -> reference

// TestImageVersion returns a locally built image that is the test image with APP_VERSION=version
// in its environment: a different image (its own id) per version, for tests that roll a service
// from one image to another and need to tell which one a container runs (GET / shows the env).
func TestImageVersion(t testing.TB, version string) string {
	t.Helper()
	base := TestImage(t)
	ref := base + "-" + version
	if _, ok := variants.Load(ref); ok {
		return ref
	}
	c := DockerClient(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if _, err := c.ImageInspect(ctx, ref); err == nil {
		variants.Store(ref, true)
		return ref
	} else if !cerrdefs.IsNotFound(err) {
		t.Fatalf("looking for image %s: %v", ref, err)
	}
	dockerfile := fmt.Sprintf("FROM %s\nENV APP_VERSION=%s\n", base, version)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(dockerfile)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := c.ImageBuild(ctx, &buf, client.ImageBuildOptions{Tags: []string{ref}, Labels: map[string]string{TestLabel: "1"},
		Remove: true, ForceRemove: true, Version: build.BuilderV1})
	if err != nil {
		t.Fatalf("building image %s: %v", ref, err)
	}
	out, err := readJSONStream(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("building image %s: %v\n%s", ref, err, out)
	}
	variants.Store(ref, true)
	return ref
}
