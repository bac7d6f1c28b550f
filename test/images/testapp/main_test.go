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

package main

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMain runs the command instead of the tests when a test starts this binary as testapp.
func TestMain(m *testing.M) {
	if os.Getenv("TESTAPP_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// run starts this test binary as testapp with args and env and returns its exit code and output.
func run(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
	cmd.Env = append(os.Environ(), append(env, "TESTAPP_RUN_MAIN=1")...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("running testapp %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
		case "/slow":
			<-r.Context().Done()
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	for path, want := range map[string]int{"/ok": 0, "/down": 1, "/slow": 1} {
		if got := probe(srv.URL+path, 200*time.Millisecond); got != want {
			t.Errorf("probe %s = %d, want %d", path, got, want)
		}
	}
	if got := probe("http://127.0.0.1:1/", time.Second); got != 1 {
		t.Errorf("probe of a closed port = %d, want 1", got)
	}
	if code, _, _ := run(t, nil, "probe", srv.URL+"/ok"); code != 0 {
		t.Errorf("testapp probe of a 200 exited %d, want 0", code)
	}
	if code, _, _ := run(t, nil, "probe", srv.URL+"/down"); code != 1 {
		t.Errorf("testapp probe of a 503 exited %d, want 1", code)
	}
}

func TestExitAfter(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want int
	}{
		{[]string{"EXIT_AFTER=100ms"}, 0},
		{[]string{"EXIT_AFTER=100ms", "EXIT_CODE=3"}, 3},
	} {
		start := time.Now()
		code, stdout, stderr := run(t, append(tc.env, "LISTEN=127.0.0.1:0"))
		if code != tc.want {
			t.Errorf("%v: exit code %d, want %d; stdout:\n%s\nstderr:\n%s", tc.env, code, tc.want, stdout, stderr)
		}
		if want := "exiting with code"; !strings.Contains(stdout, want) {
			t.Errorf("%v: stdout %q lacks %q", tc.env, stdout, want)
		}
		if !strings.Contains(stderr, "testapp starting") {
			t.Errorf("%v: stderr %q lacks the start line", tc.env, stderr)
		}
		if d := time.Since(start); d < 100*time.Millisecond {
			t.Errorf("%v: exited after %s, before EXIT_AFTER", tc.env, d)
		}
	}
}

func TestExit(t *testing.T) {
	if code, _, _ := run(t, nil, "exit", "7"); code != 7 {
		t.Errorf("testapp exit 7 exited %d", code)
	}
}
