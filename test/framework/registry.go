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
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	registrytypes "github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
)

// RegistryOptions configure StartRegistry.
type RegistryOptions struct {
	// Username and Password, when either is set, are the only HTTP Basic credentials the registry
	// accepts; every other request gets 401.
	Username, Password string
}

// Registry is an in-memory OCI image registry serving plain HTTP on 127.0.0.1. The Docker Engine
// treats 127.0.0.0/8 as an insecure registry by default, so it pushes to and pulls from it without
// TLS, provided it shares this machine's network namespace.
type Registry struct {
	// Host is the registry's address, 127.0.0.1:port, which starts image references in it.
	Host string
	// Username and Password are the credentials the registry requires; both are empty when it
	// requires none.
	Username, Password string

	pulls atomic.Int64
	srv   *http.Server
}

// StartRegistry starts a registry on a free port of 127.0.0.1 and stops it when the test ends.
func StartRegistry(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening for the test registry on 127.0.0.1: %v", err)
	}
	r := &Registry{Host: l.Addr().String(), Username: opts.Username, Password: opts.Password}
	r.srv = &http.Server{
		Handler:           r.handler(registry.New(registry.Logger(log.New(io.Discard, "", 0)))),
		ReadHeaderTimeout: 30 * time.Second,
	}
	go func() { _ = r.srv.Serve(l) }()
	t.Cleanup(r.Stop)
	return r
}

// Stop closes the registry's listener and connections, so that pulls from it fail as from a
// registry that is down. StartRegistry stops it when the test ends; stopping it twice is harmless.
func (r *Registry) Stop() { _ = r.srv.Close() }

// handler counts pulls and, when the registry has credentials, refuses requests without them.
func (r *Registry) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.Username != "" || r.Password != "" {
			user, pass, ok := req.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(r.Username)) != 1 ||
				subtle.ConstantTimeCompare([]byte(pass), []byte(r.Password)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="drover-test"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
		}
		if (req.Method == http.MethodGet || req.Method == http.MethodHead) && isManifestPath(req.URL.Path) {
			r.pulls.Add(1)
		}
		next.ServeHTTP(w, req)
	})
}

// isManifestPath reports whether path is /v2/<name>/manifests/<reference>.
func isManifestPath(path string) bool {
	elems := strings.Split(strings.Trim(path, "/"), "/")
	return len(elems) >= 4 && elems[0] == "v2" && elems[len(elems)-2] == "manifests"
}

// Pulls is the number of manifest requests (GET or HEAD) the registry has answered for clients
// with valid credentials. Every pull makes at least one and a push makes none; a request refused
// for lack of credentials does not count. Docker 20.10 resolves a tag with a HEAD and GETs the
// manifest by digest only when it has not cached it (it caches the manifests it pushes), so one
// pull counts 1 or 2: assert that the count grew or stayed, not by how much.
func (r *Registry) Pulls() int { return int(r.pulls.Load()) }

// RegistryAuth is the registry's credentials encoded for the Docker Engine API's RegistryAuth
// options (the X-Registry-Auth header): base64url of an AuthConfig in JSON. It is never empty,
// since Docker 20.10 rejects a push without that header even when the registry needs no
// credentials.
func (r *Registry) RegistryAuth() string {
	b, err := json.Marshal(registrytypes.AuthConfig{Username: r.Username, Password: r.Password, ServerAddress: r.Host})
	if err != nil {
		panic(err) // a struct of strings always marshals
	}
	return base64.URLEncoding.EncodeToString(b)
}

// Push tags the engine's local image localRef (a tagged reference, such as TestImage returns) as
// <Host>/<repoTag>, pushes it to the registry through the Docker Engine, and returns
// <Host>/<repoTag>. It then removes that tag from the engine, keeping localRef, so that running
// <Host>/<repoTag> later really pulls it from the registry.
func (r *Registry) Push(t testing.TB, localRef, repoTag string) string {
	t.Helper()
	c := DockerClient(t)
	ref := r.Host + "/" + repoTag
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := c.ImageTag(ctx, client.ImageTagOptions{Source: localRef, Target: ref}); err != nil {
		t.Fatalf("tagging %s as %s: %v", localRef, ref, err)
	}
	defer func() {
		if _, err := c.ImageRemove(ctx, ref, client.ImageRemoveOptions{}); err != nil {
			t.Errorf("removing the tag %s from the engine after pushing it: %v", ref, err)
		}
	}()
	resp, err := c.ImagePush(ctx, ref, client.ImagePushOptions{RegistryAuth: r.RegistryAuth()})
	if err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	out, err := readJSONStream(resp)
	resp.Close()
	if err != nil {
		t.Fatalf("pushing %s: %v\n(the Docker Engine must share this machine's network namespace to reach "+
			"127.0.0.1; a rootless or VM-based engine cannot)\npush output:\n%s", ref, err, out)
	}
	return ref
}
