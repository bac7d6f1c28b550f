package registration

import (
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/internal/identity"
	"github.com/drover-dev/drover/internal/registration/wire"
)

const (
	msgNotInstance  = "certificate renewal refused: only a container instance can renew its certificate"
	msgDeregistered = "certificate renewal refused: the container instance is deregistered; register the host again"
)

// renew signs a new certificate for the calling instance's identity, as long as the
// ContainerInstance the caller's certificate was issued for still exists.
func (s *Server) renew(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	u, ok := request.UserFrom(ctx)
	if !ok {
		writeError(w, http.StatusForbidden, msgNotInstance)
		return
	}
	in, ok := identity.FromUser(u.GetName(), u.GetGroups())
	if !ok {
		writeError(w, http.StatusForbidden, msgNotInstance)
		return
	}
	log := klog.FromContext(ctx).WithValues("containerInstance", klog.KRef(in.Namespace, in.Name))
	var req wire.RenewRequest
	if !decode(w, r, "malformed renewal request", &req) {
		return
	}
	csr, err := parseCSR(req.CSR)
	if err != nil {
		writeError(w, http.StatusBadRequest, "malformed renewal request: "+err.Error())
		return
	}
	ci := &ecsv1alpha1.ContainerInstance{}
	err = s.client.Get(ctx, types.NamespacedName{Namespace: in.Namespace, Name: in.Name}, ci)
	switch {
	case apierrors.IsNotFound(err):
		log.Info("Certificate renewal refused: no such container instance")
		writeError(w, http.StatusForbidden, msgDeregistered)
		return
	case err != nil:
		s.failed(w, log, err)
		return
	case string(ci.UID) != in.UID || ci.DeletionTimestamp != nil:
		log.Info("Certificate renewal refused: the container instance was deregistered", "uid", in.UID)
		writeError(w, http.StatusForbidden, msgDeregistered)
		return
	}
	cert, err := s.opts.CA.SignClientCSR(csr, in.User(), in.Groups(), s.opts.CertValidity)
	if err != nil {
		s.failed(w, log, err)
		return
	}
	log.V(2).Info("Certificate renewed")
	writeJSON(w, http.StatusOK, wire.RenewResponse{Certificate: string(cert)})
}
