package hollow

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/registration/wire"
)

const (
	// MaxPerActivation is the largest registrationLimit an Activation takes.
	MaxPerActivation = 1000
	// registerTimeout bounds a registration, as drover-agent register's default --request-timeout does.
	registerTimeout = 30 * time.Second
	// registerAttempts is how often a host tries to register before RegisterMany gives up on it.
	registerAttempts = 3
)

// Activation is an Activation and its code, as drover activation create prints them.
type Activation struct {
	// ID is <namespace>/<name>.
	ID, Code string
}

// CreateActivations creates Activations of cluster in namespace with room for n registrations
// (MaxPerActivation each), valid for an hour, as drover activation create does.
func CreateActivations(ctx context.Context, c client.Client, namespace, cluster string, n int) ([]Activation, error) {
	var acts []Activation
	for left := n; left > 0; left -= MaxPerActivation {
		code, err := wire.NewCode()
		if err != nil {
			return nil, err
		}
		act := &ecsv1alpha1.Activation{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "hollow-", Namespace: namespace},
			Spec: ecsv1alpha1.ActivationSpec{
				Cluster:           cluster,
				CodeHash:          wire.HashCode(code),
				ExpiresAt:         metav1.NewTime(time.Now().Add(time.Hour).UTC().Truncate(time.Second)),
				RegistrationLimit: int32(min(left, MaxPerActivation)),
			},
		}
		if err := c.Create(ctx, act); err != nil {
			return nil, fmt.Errorf("creating an activation: %w", err)
		}
		acts = append(acts, Activation{ID: act.Namespace + "/" + act.Name, Code: code})
	}
	return acts, nil
}

// Identity is a registered host: its ContainerInstance and its client certificate (with its key).
type Identity struct {
	Namespace, Name, Cluster, Hostname string
	Cert                               tls.Certificate
}

// Registrar registers hosts through droverd's registration endpoint, as drover-agent register
// does once it has checked the CA: each with a new ECDSA key and CSR, in one POST on a new
// connection verified against the CA.
type Registrar struct {
	// Server is droverd's URL.
	Server string
	// CA verifies droverd.
	CA *x509.CertPool
	// Activations have room for the registrations; the attempts use them in order.
	Activations []Activation
	// HostnamePrefix starts the host names, <prefix>-<index>; "hollow-host" when empty.
	HostnamePrefix string

	// slots counts the registrations attempted: attempt j uses activation j/MaxPerActivation.
	slots atomic.Int64
}

// Register registers host i. The latency is the POST's.
func (g *Registrar) Register(ctx context.Context, i int) (*Identity, time.Duration, error) {
	slot := int(g.slots.Add(1)) - 1
	if slot >= len(g.Activations)*MaxPerActivation {
		return nil, 0, errors.New("all activations are used up")
	}
	act := g.Activations[slot/MaxPerActivation]
	prefix := g.HostnamePrefix
	if prefix == "" {
		prefix = "hollow-host"
	}
	hostname := fmt.Sprintf("%s-%05d", prefix, i)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, 0, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: hostname}}, key)
	if err != nil {
		return nil, 0, err
	}
	body, err := json.Marshal(wire.RegisterRequest{
		ActivationID: act.ID, ActivationCode: act.Code, Hostname: hostname,
		CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})),
	})
	if err != nil {
		return nil, 0, err
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: g.CA, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: registerTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.Server+wire.RegisterPath, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	lat := time.Since(t0)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		var e wire.ErrorResponse
		_ = json.Unmarshal(data, &e)
		return nil, 0, fmt.Errorf("registering %s: %d %s", hostname, resp.StatusCode, e.Error)
	}
	var out wire.RegisterResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, 0, fmt.Errorf("registering %s: %w", hostname, err)
	}
	block, _ := pem.Decode([]byte(out.Certificate))
	if block == nil {
		return nil, 0, fmt.Errorf("registering %s: no PEM certificate in the answer", hostname)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, 0, fmt.Errorf("registering %s: %w", hostname, err)
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, 0, fmt.Errorf("registering %s: the certificate is not for the key sent", hostname)
	}
	return &Identity{
		Namespace: out.Namespace, Name: out.ContainerInstance, Cluster: out.Cluster, Hostname: hostname,
		Cert: tls.Certificate{Certificate: [][]byte{block.Bytes}, PrivateKey: key, Leaf: leaf},
	}, lat, nil
}

// Registrations are the outcome of RegisterMany.
type Registrations struct {
	// Identities of the hosts that registered, in the order they did.
	Identities []*Identity
	// Latencies of the successful registrations.
	Latencies []time.Duration
	// FailedAttempts counts the attempts that failed; a host tries three times.
	FailedAttempts int
	FirstErr       error
	// Wall is the time from the first attempt to the last answer.
	Wall time.Duration
}

// Rate is registrations per second.
func (r Registrations) Rate() float64 {
	if r.Wall <= 0 {
		return 0
	}
	return float64(len(r.Identities)) / r.Wall.Seconds()
}

// RegisterMany registers hosts first .. first+n-1 with workers concurrent registrations, trying
// each up to three times. It returns what registered; FirstErr says why others did not.
func (g *Registrar) RegisterMany(ctx context.Context, first, n, workers int) Registrations {
	var next atomic.Int64
	var mu sync.Mutex
	res := Registrations{}
	var wg sync.WaitGroup
	t0 := time.Now()
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := first + int(next.Add(1)) - 1
				if i >= first+n {
					return
				}
				for range registerAttempts {
					id, lat, err := g.Register(ctx, i)
					mu.Lock()
					if err != nil {
						res.FailedAttempts++
						if res.FirstErr == nil {
							res.FirstErr = err
						}
					} else {
						res.Identities = append(res.Identities, id)
						res.Latencies = append(res.Latencies, lat)
					}
					mu.Unlock()
					if err == nil || ctx.Err() != nil {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	res.Wall = time.Since(t0)
	return res
}
