package engine

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	"k8s.io/klog/v2"

	rt "github.com/drover-dev/drover/internal/agent/runtime"
)

// registryAuths are registry credentials by registry host, from a Docker config.json.
type registryAuths struct {
	byHost map[string]rt.RegistryAuth
}

// dockerConfig is the part of Docker's config.json the agent reads.
type dockerConfig struct {
	Auths map[string]struct {
		Auth     string `json:"auth"`
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"auths"`
	CredsStore  string            `json:"credsStore"`
	CredHelpers map[string]string `json:"credHelpers"`
}

// loadRegistryAuths reads the "auths" of a Docker config.json. An empty path means none; a path
// that does not exist or does not parse is an error, so that a typo does not silently turn into
// anonymous pulls.
func loadRegistryAuths(path string) (*registryAuths, error) {
	a := &registryAuths{byHost: map[string]rt.RegistryAuth{}}
	if path == "" {
		return a, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading registry credentials from --docker-config %s: %w", path, err)
	}
	var cfg dockerConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("--docker-config %s is not a Docker config.json: %w", path, err)
	}
	if cfg.CredsStore != "" || len(cfg.CredHelpers) > 0 {
		klog.Background().Info("Docker credential helpers are not used; only \"auths\" entries with credentials are", "dockerConfig", path)
	}
	for host, e := range cfg.Auths {
		auth := rt.RegistryAuth{Username: e.Username, Password: e.Password, ServerAddress: host}
		if e.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return nil, fmt.Errorf("--docker-config %s: auths[%q].auth is not base64 of user:password: %w", path, host, err)
			}
			user, pass, ok := strings.Cut(string(dec), ":")
			if !ok {
				return nil, fmt.Errorf("--docker-config %s: auths[%q].auth is not base64 of user:password", path, host)
			}
			auth.Username, auth.Password = user, pass
		}
		a.byHost[normalizeRegistryHost(host)] = auth
	}
	return a, nil
}

// normalizeRegistryHost turns the keys Docker writes (https://index.docker.io/v1/, host:port)
// into the host reference.Domain returns.
func normalizeRegistryHost(h string) string {
	h = strings.TrimPrefix(strings.TrimPrefix(h, "https://"), "http://")
	h, _, _ = strings.Cut(h, "/")
	if h == "index.docker.io" || h == "registry-1.docker.io" {
		return "docker.io"
	}
	return h
}

// forImage returns the credentials for ref's registry, or nil.
func (a *registryAuths) forImage(ref string) *rt.RegistryAuth {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil
	}
	if auth, ok := a.byHost[reference.Domain(named)]; ok {
		return &auth
	}
	return nil
}

// sharedPullWindow is how recent a pull of the same image must be for a task to use it instead
// of pulling again.
const sharedPullWindow = 30 * time.Second

// ensureImage makes ref available locally according to the pull behaviour and returns the
// digest of the image pulled ("" when the cached image is used).
func (e *Engine) ensureImage(ctx context.Context, ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("image %q is not a valid image reference: %w", ref, err)
	}
	ref = reference.FamiliarString(reference.TagNameOnly(named))
	// One pull of an image at a time: tasks starting together share it.
	m, _ := e.pullMu.LoadOrStore(ref, &sync.Mutex{})
	m.(*sync.Mutex).Lock()
	defer m.(*sync.Mutex).Unlock()

	cached := func() bool {
		ictx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
		defer cancel()
		_, err := e.cfg.Runtime.InspectImage(ictx, ref)
		return err == nil
	}
	rec, _ := e.store.image(ref)
	// A pull that another task finished while this one waited for the lock is shared.
	if rec != nil && time.Since(rec.PulledAt) < sharedPullWindow && e.cfg.PullBehavior != PullAlways && cached() {
		return rec.Digest, nil
	}
	switch e.cfg.PullBehavior {
	case PullPreferCached:
		if cached() {
			e.touchImage(ref, rec, false)
			return "", nil
		}
	case PullOnce:
		if rec != nil && cached() {
			e.touchImage(ref, rec, false)
			return "", nil
		}
	}
	pctx, cancel := context.WithTimeout(ctx, e.cfg.PullTimeout)
	defer cancel()
	digest, err := e.cfg.Runtime.PullImage(pctx, ref, e.auths.forImage(ref))
	if err != nil {
		if errors.Is(pctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("pull of %s did not finish within %s (--image-pull-timeout)", ref, e.cfg.PullTimeout)
		}
		if e.cfg.PullBehavior == PullDefault && cached() {
			klog.FromContext(ctx).Info("Pull failed; using the cached image", "image", ref, "err", err)
			return "", nil
		}
		return "", fmt.Errorf("pulling %s: %w", ref, err)
	}
	e.touchImage(ref, &imageRecord{Digest: digest}, true)
	return digest, nil
}

// touchImage records that the agent pulled or used an image it pulled before.
func (e *Engine) touchImage(ref string, rec *imageRecord, pulled bool) {
	now := time.Now()
	switch {
	case pulled:
		rec.PulledAt, rec.LastUsed = now, now
	case rec != nil:
		rec.LastUsed = now
	default:
		// Cached and never pulled by the agent: not the agent's to collect.
		return
	}
	if err := e.store.putImage(ref, rec); err != nil {
		klog.Background().Error(err, "Recording image use", "image", ref)
	}
}

// collectImages removes images the agent pulled that no container uses and that were not used
// for ImageMinAge. Images the agent did not pull are never touched.
func (e *Engine) collectImages(ctx context.Context) {
	log := klog.FromContext(ctx)
	imgs, err := e.store.images()
	if err != nil {
		log.Error(err, "Reading the image records")
		return
	}
	recs, _ := e.store.tasks()
	inUse := map[string]bool{}
	for _, r := range recs {
		for _, c := range r.Task.Spec.Containers {
			if n, err := reference.ParseNormalizedNamed(c.Image); err == nil {
				inUse[reference.FamiliarString(reference.TagNameOnly(n))] = true
			}
		}
	}
	for ref, r := range imgs {
		if inUse[ref] || time.Since(r.LastUsed) < e.cfg.ImageMinAge {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
		err := e.cfg.Runtime.RemoveImage(cctx, ref)
		cancel()
		switch {
		case err == nil || errors.Is(err, rt.ErrNotFound):
			log.Info("Removed an unused image", "image", ref, "lastUsed", r.LastUsed)
			_ = e.store.deleteImage(ref)
		case errors.Is(err, rt.ErrExists):
			// In use by a container outside the agent's tasks: kept.
		default:
			log.V(1).Info("Cannot remove an unused image", "image", ref, "err", err)
		}
	}
}
