// Package controllers registers Drover's reconcilers with a controller-runtime Manager. Each
// reconciler lives in its own package below this one.
package controllers

import (
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/drover-dev/drover/controllers/activation"
	"github.com/drover-dev/drover/controllers/cluster"
	"github.com/drover-dev/drover/controllers/containerinstance"
	"github.com/drover-dev/drover/controllers/placement"
	"github.com/drover-dev/drover/controllers/service"
	"github.com/drover-dev/drover/controllers/task"
	"github.com/drover-dev/drover/controllers/taskdefinition"
	"github.com/drover-dev/drover/internal/liveness"
)

// Options carry what some reconcilers take from the process they run in.
type Options struct {
	// Renewals holds heartbeat renewals that droverd's Lease storage kept in memory; nil when the
	// controllers run apart from the API server, where every renewal is in its Lease.
	Renewals *liveness.Renewals
}

// SetupFunc adds one reconciler to a Manager.
type SetupFunc func(mgr ctrl.Manager, o Options) error

func plain(setup func(mgr ctrl.Manager) error) SetupFunc {
	return func(mgr ctrl.Manager, _ Options) error { return setup(mgr) }
}

// All lists every reconciler droverd runs, in the order they are added.
var All = []SetupFunc{
	plain(taskdefinition.Setup),
	plain(task.Setup),
	plain(service.Setup),
	plain(placement.Setup),
	plain(cluster.Setup),
	func(mgr ctrl.Manager, o Options) error { return containerinstance.Setup(mgr, o.Renewals) },
	plain(activation.Setup),
}

// SetupAll adds every reconciler in All to mgr.
func SetupAll(mgr ctrl.Manager, o Options) error {
	for _, setup := range All {
		if err := setup(mgr, o); err != nil {
			return err
		}
	}
	return nil
}
