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
)

// SetupFunc adds one reconciler to a Manager.
type SetupFunc func(mgr ctrl.Manager) error

// All lists every reconciler droverd runs, in the order they are added.
var All = []SetupFunc{
	taskdefinition.Setup,
	task.Setup,
	service.Setup,
	placement.Setup,
	cluster.Setup,
	containerinstance.Setup,
	activation.Setup,
}

// SetupAll adds every reconciler in All to mgr.
func SetupAll(mgr ctrl.Manager) error {
	for _, setup := range All {
		if err := setup(mgr); err != nil {
			return err
		}
	}
	return nil
}
