package manager

// RBAC the controllers need in a Kubernetes cluster; `make manifests` turns these markers into
// config/rbac/role.yaml. Each controller package declares what it reads and writes.

// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
