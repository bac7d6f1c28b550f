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

// Command testapp is the entrypoint of the image that end-to-end tests run as Task containers.
// The image has no shell, so everything a test needs is built in:
//
//	testapp [serve]        HTTP server on $LISTEN (default :8080)
//	testapp probe URL      GET URL with a 2s timeout; exit 0 on 2xx, else 1 (for HEALTHCHECK CMD)
//	testapp exit N         exit with code N at once
//	testapp sleep DURATION sleep, then exit 0 (also on SIGTERM)
//	testapp ticker NAME    greet on stdout then stderr, then "tick N" every 100 ms until SIGTERM
//
// Any other arguments also start the server, which reports them in GET /.
//
// The server serves GET / (hostname, pid, environment and arguments as JSON), GET /healthz (503
// while the file $UNHEALTHY_FILE exists), POST /exit?code=N and GET /log?msg=X (prints X). It
// reads EXIT_AFTER (a duration) and EXIT_CODE (default 0) to exit by itself, IGNORE_SIGTERM=1 to
// keep running on SIGTERM, and WRITE_FILE (with WRITE_CONTENT, default the hostname) to write a
// file at start.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	args := os.Args[1:]
	if len(args) == 0 {
		os.Exit(serve())
	}
	switch args[0] {
	case "probe":
		if len(args) != 2 {
			fail(1, "usage: testapp probe URL")
		}
		os.Exit(probe(args[1], 2*time.Second))
	case "exit":
		code, err := strconv.Atoi(arg(args, 1))
		if err != nil {
			fail(2, "usage: testapp exit N: %v", err)
		}
		fmt.Printf("exiting with code %d\n", code)
		os.Exit(code)
	case "ticker":
		ticker(arg(args, 1))
	case "sleep":
		d, err := time.ParseDuration(arg(args, 1))
		if err != nil {
			fail(2, "usage: testapp sleep DURATION: %v", err)
		}
		sleep(d)
	default: // "serve", or arguments a test passes to see them in GET /
		os.Exit(serve())
	}
}

func arg(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}

func fail(code int, format string, a ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	os.Exit(code)
}

// probe GETs url and returns the exit code for a health check: 0 on 2xx, else 1.
func probe(url string, timeout time.Duration) int {
	resp, err := (&http.Client{Timeout: timeout}).Get(url)
	if err != nil {
		fmt.Fprintf(os.Stderr, "probe %s: %v\n", url, err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintf(os.Stderr, "probe %s: %s\n", url, resp.Status)
		return 1
	}
	return 0
}

func sleep(d time.Duration) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-time.After(d):
	case <-sigs:
		fmt.Println("terminating")
	}
	os.Exit(0)
}

// serve runs the HTTP server until a signal, EXIT_AFTER or POST /exit ends it, and returns the
// exit code.
func serve() int {
	fmt.Fprintln(os.Stderr, "testapp starting")
	hostname, _ := os.Hostname()
	if path := os.Getenv("WRITE_FILE"); path != "" {
		content := os.Getenv("WRITE_CONTENT")
		if content == "" {
			content = hostname
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			fail(1, "writing WRITE_FILE: %v", err)
		}
	}
	exitCode := 0
	if s := os.Getenv("EXIT_CODE"); s != "" {
		var err error
		if exitCode, err = strconv.Atoi(s); err != nil {
			fail(2, "EXIT_CODE must be an integer: %v", err)
		}
	}
	var exitAfter <-chan time.Time
	if s := os.Getenv("EXIT_AFTER"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			fail(2, "EXIT_AFTER must be a Go duration such as 30s: %v", err)
		}
		exitAfter = time.After(d)
	}
	addr := os.Getenv("LISTEN")
	if addr == "" {
		addr = ":8080"
	}

	exitReq := make(chan int, 1)
	srv := &http.Server{Addr: addr, Handler: logRequests(handler(hostname, exitReq))}
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	fmt.Printf("listening on %s\n", addr)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	for {
		select {
		case err := <-served:
			fmt.Fprintf(os.Stderr, "serving on %s: %v\n", addr, err)
			return 1
		case sig := <-sigs:
			if sig == syscall.SIGTERM && os.Getenv("IGNORE_SIGTERM") == "1" {
				fmt.Println("ignoring SIGTERM")
				continue
			}
			fmt.Println("terminating")
			return 0
		case <-exitAfter:
			fmt.Printf("exiting with code %d\n", exitCode)
			return exitCode
		case code := <-exitReq:
			// Shutdown waits for the POST /exit handler, so its response is sent before the exit.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = srv.Shutdown(ctx)
			cancel()
			fmt.Printf("exiting with code %d\n", code)
			return code
		}
	}
}

func handler(hostname string, exitReq chan<- int) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"hostname": hostname, "pid": os.Getpid(), "env": env, "args": os.Args[1:],
		})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if f := os.Getenv("UNHEALTHY_FILE"); f != "" {
			if _, err := os.Stat(f); err == nil {
				http.Error(w, "unhealthy: "+f+" exists", http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("POST /exit", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.URL.Query().Get("code"))
		if err != nil {
			http.Error(w, "code must be an integer: "+err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "exiting with code %d\n", code)
		select {
		case exitReq <- code:
		default: // an exit is already under way
		}
	})
	mux.HandleFunc("GET /log", func(w http.ResponseWriter, r *http.Request) {
		fmt.Println(r.URL.Query().Get("msg"))
		fmt.Fprintln(w, "ok")
	})
	return mux
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// logRequests prints one line per request to stdout.
func logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		fmt.Printf("%s %s %d\n", r.Method, r.URL.RequestURI(), sw.status)
	})
}

// ticker greets on stdout and then on stderr, naming itself after name, then writes "tick N" to
// stdout every 100 ms until SIGTERM: output for log tests.
func ticker(name string) {
	if name == "" {
		name = "app"
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	fmt.Printf("hello from %s on stdout\n", name)
	time.Sleep(100 * time.Millisecond)
	fmt.Fprintf(os.Stderr, "hello from %s on stderr\n", name)
	time.Sleep(100 * time.Millisecond)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 1; ; i++ {
		select {
		case <-stop:
			return
		case <-tick.C:
			fmt.Printf("tick %d\n", i)
		}
	}
}
