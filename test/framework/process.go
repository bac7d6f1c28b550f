package framework

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/drover-dev/drover/internal/droverd"
	"github.com/drover-dev/drover/internal/manager"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Binary builds the named command under ./cmd once per test binary and returns its path.
func Binary(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "drover-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+string(filepath.Separator), "./cmd/...")
		cmd.Dir = RepoRoot()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/...: %v\n%s", err, out.String())
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Process is droverd running as a child process.
type Process struct {
	Server
	Cmd    *exec.Cmd
	Log    *SyncBuffer
	exited chan error
}

// StartProcess starts the droverd binary with the options and waits until it is ready. The process
// is killed when the test ends if it is still running.
func StartProcess(t testing.TB, o *droverd.Options, extraArgs ...string) *Process {
	t.Helper()
	bin := Binary(t, "droverd")
	p := &Process{Server: Server{URL: fmt.Sprintf("https://127.0.0.1:%d", o.SecurePort), DataDir: o.DataDir,
		Kubeconfig: filepath.Join(o.DataDir, "admin.kubeconfig"), Options: o}, Log: &SyncBuffer{}, exited: make(chan error, 1)}
	p.Cmd = exec.Command(bin, append(Args(o), extraArgs...)...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.Log, p.Log
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("starting droverd: %v", err)
	}
	go func() { p.exited <- p.Cmd.Wait() }()
	t.Cleanup(func() {
		if p.Cmd.ProcessState == nil {
			_ = p.Cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(30 * time.Second):
				_ = p.Cmd.Process.Kill()
			}
		}
		if t.Failed() {
			t.Logf("droverd log (%s):\n%s", o.DataDir, tail(p.Log.String(), 4000))
		}
	})
	if err := WaitReady(t.Context(), p.URL, o.DataDir, 3*time.Minute, p.exited); err != nil {
		t.Fatalf("%v\nlog:\n%s", err, tail(p.Log.String(), 4000))
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", p.Kubeconfig)
	if err != nil {
		t.Fatalf("loading admin kubeconfig: %v", err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	p.Config = cfg
	if p.Client, err = client.New(cfg, client.Options{Scheme: manager.Scheme}); err != nil {
		t.Fatal(err)
	}
	return p
}

// Kill sends SIGKILL and waits for the process to end.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	_ = p.Cmd.Process.Kill()
	<-p.exited
}

// Stop sends SIGTERM and waits up to timeout for a clean exit, returning the exit error.
func (p *Process) Stop(t testing.TB, timeout time.Duration) error {
	t.Helper()
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		return err
	case <-time.After(timeout):
		_ = p.Cmd.Process.Kill()
		return fmt.Errorf("droverd did not exit within %s of SIGTERM", timeout)
	}
}

// SyncBuffer collects output, for example a process's; safe for concurrent writes and reads. The
// zero value is ready to use.
type SyncBuffer struct {
	mu sync.Mutex
	w  bytes.Buffer
}

// Write appends b.
func (s *SyncBuffer) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

// Command returns an exec.Cmd for a binary built from ./cmd, killed when the test ends and its
// output logged if the test failed.
func Command(t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(Binary(t, name), args...)
	out := &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	t.Cleanup(func() {
		if cmd.Process != nil && cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
			}
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, tail(out.String(), 4000))
		}
	})
	return cmd
}
