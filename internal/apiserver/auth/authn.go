package auth

import (
	"crypto/x509"
	"net/http"
	"strings"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/group"
	x509request "k8s.io/apiserver/pkg/authentication/request/x509"
	"k8s.io/apiserver/pkg/authentication/user"
)

// HealthPaths may be read without credentials, so that probes and load balancers need no certificate.
var HealthPaths = []string{"/healthz", "/readyz", "/livez"}

// NewAuthenticator authenticates client certificates signed by clientCAs (user = CN, groups = O).
// Requests without credentials are anonymous only on HealthPaths; anywhere else they get 401.
func NewAuthenticator(clientCAs *x509.CertPool) authenticator.Request {
	opts := x509request.DefaultVerifyOptions()
	opts.Roots = clientCAs
	// Every authenticated caller is also in system:authenticated, which grants the basic-user role.
	certs := newCertCache(group.NewAuthenticatedGroupAdder(x509request.New(opts, x509request.CommonNameUserConversion)))
	return authenticator.RequestFunc(func(req *http.Request) (*authenticator.Response, bool, error) {
		resp, ok, err := certs.AuthenticateRequest(req)
		if ok || err != nil {
			return resp, ok, err
		}
		if isHealthPath(req.URL.Path) {
			return &authenticator.Response{User: &user.DefaultInfo{
				Name: user.Anonymous, Groups: []string{user.AllUnauthenticated},
			}}, true, nil
		}
		return nil, false, nil
	})
}

func isHealthPath(p string) bool {
	for _, h := range HealthPaths {
		if p == h || strings.HasPrefix(p, h+"/") {
			return true
		}
	}
	return false
}
