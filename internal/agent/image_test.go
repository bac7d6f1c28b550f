package agent

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"
)

// loggerImageRepository is the repository of the image loggerImage builds; its tag is a hash of
// the program, so an unchanged program reuses the image the engine already has.
const loggerImageRepository = "drover-agent-logger"

var (
	loggerImageOnce sync.Once
	loggerImageRef  string
	loggerImageErr  error
)

// dockerClient returns a client of the Docker Engine at DOCKER_HOST or the default socket, and
// skips the test when no engine answers.
func dockerClient(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(client.FromEnv)
	require.NoError(t, err, "creating a Docker client (check DOCKER_HOST)")
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		t.Skipf("no Docker Engine answered within 5s: %v", err)
	}
	return c
}

// loggerImage returns an image that runs ./testdata/logger, built FROM scratch for the Docker
// Engine's architecture at most once per test process. It skips the test without a Docker Engine.
func loggerImage(t *testing.T) string {
	t.Helper()
	c := dockerClient(t)
	loggerImageOnce.Do(func() { loggerImageRef, loggerImageErr = buildLoggerImage(c) })
	require.NoError(t, loggerImageErr)
	return loggerImageRef
}

func buildLoggerImage(c *client.Client) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	v, err := c.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "drover-logger-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "logger")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", bin, "./testdata/logger")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+v.Arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", errors.New("go build ./testdata/logger: " + err.Error() + "\n" + string(out))
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	ref := loggerImageRepository + ":" + hex.EncodeToString(sum[:])[:12]
	if _, err := c.ImageInspect(ctx, ref); err == nil {
		return ref, nil
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte("FROM scratch\nCOPY logger /logger\nENTRYPOINT [\"/logger\"]\n")}, {"logger", 0o755, data}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return "", err
		}
		if _, err := tw.Write(f.data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	res, err := c.ImageBuild(ctx, &buf, client.ImageBuildOptions{
		Tags: []string{ref}, Labels: map[string]string{"drover.test": "1"}, Remove: true, ForceRemove: true,
		// The classic builder needs no BuildKit session.
		Version: build.BuilderV1,
	})
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for {
		var m struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", err
		}
		if m.Error != "" {
			return "", errors.New("building " + ref + ": " + m.Error)
		}
	}
	if _, err := c.ImageInspect(ctx, ref); err != nil {
		return "", err
	}
	return ref, nil
}
