// Package manager runs Drover's controllers in a controller-runtime Manager with leader election,
// either inside droverd or alone against any Kubernetes-compatible API server.
package manager

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
	"github.com/drover-dev/drover/controllers"
	"github.com/drover-dev/drover/internal/liveness"
)

// LeaderElectionID names the Lease the controllers' leader holds.
const LeaderElectionID = "drover-controllers"

// Scheme knows every type Drover's controllers read or write.
var Scheme = runtime.NewScheme()

func init() {
	// controller-runtime logs through klog, like the API server it runs beside.
	ctrl.SetLogger(klog.NewKlogr())
	utilruntime.Must(corev1.AddToScheme(Scheme))
	utilruntime.Must(coordinationv1.AddToScheme(Scheme))
	utilruntime.Must(ecsv1alpha1.AddToScheme(Scheme))
}

// Options configure the Manager.
type Options struct {
	// LeaderElection turns leader election on; only the leader runs controllers.
	LeaderElection bool
	// LeaderElectionNamespace holds the Lease.
	LeaderElectionNamespace string
	// MetricsBindAddress serves controller metrics on their own port; "0" turns it off (droverd
	// serves them on its API port instead).
	MetricsBindAddress string
	// HealthProbeBindAddress serves /healthz and /readyz for the controllers alone; "" or "0" is off.
	HealthProbeBindAddress string
	// Renewals holds heartbeat renewals the API server in the same process kept in memory; nil
	// when the controllers run apart from it.
	Renewals *liveness.Renewals
}

// New builds a Manager with every Drover controller registered.
func New(cfg *rest.Config, o Options) (ctrl.Manager, error) {
	if o.MetricsBindAddress == "" {
		o.MetricsBindAddress = "0"
	}
	leaseDuration, renew, retry := 15*time.Second, 10*time.Second, 2*time.Second
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        Scheme,
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsBindAddress},
		HealthProbeBindAddress:        o.HealthProbeBindAddress,
		LeaderElection:                o.LeaderElection,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionResourceLock:    "leases",
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &leaseDuration,
		RenewDeadline:                 &renew,
		RetryPeriod:                   &retry,
		// Controller names must be unique per process for their metrics; tests run several
		// managers in one process, one after another.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, fmt.Errorf("creating controller manager: %w", err)
	}
	if o.HealthProbeBindAddress != "" && o.HealthProbeBindAddress != "0" {
		if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
			return nil, err
		}
		if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
			return nil, err
		}
	}
	if err := controllers.SetupAll(mgr, controllers.Options{Renewals: o.Renewals}); err != nil {
		return nil, fmt.Errorf("setting up controllers: %w", err)
	}
	return mgr, nil
}

// Run builds the Manager and runs it until ctx ends.
func Run(ctx context.Context, cfg *rest.Config, o Options) error {
	mgr, err := New(cfg, o)
	if err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// WaitForAPIs waits until the API server at cfg serves every Drover kind, polling discovery. The
// controllers' sources look each kind up once and, when it is not served yet, only try again
// after ten seconds; droverd installs its CRDs as it starts, so it waits for them first.
func WaitForAPIs(ctx context.Context, cfg *rest.Config, timeout time.Duration) error {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	gv := ecsv1alpha1.GroupVersion
	want := map[string]bool{}
	for kind := range Scheme.KnownTypes(gv) {
		// The scheme also knows the group's lists and the meta types every group version carries.
		if !strings.HasSuffix(kind, "List") && !strings.HasSuffix(kind, "Options") && kind != "WatchEvent" {
			want[kind] = true
		}
	}
	var missing []string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		missing = missing[:0]
		served := map[string]bool{}
		if list, err := dc.ServerResourcesForGroupVersion(gv.String()); err == nil {
			for _, r := range list.APIResources {
				served[r.Kind] = true
			}
		}
		for kind := range want {
			if !served[kind] {
				missing = append(missing, kind)
			}
		}
		return len(missing) == 0, nil
	})
	if err != nil {
		slices.Sort(missing)
		return fmt.Errorf("waiting for %s to serve %s: %w", gv, strings.Join(missing, ", "), err)
	}
	return nil
}
