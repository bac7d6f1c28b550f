// Package hollow is a test runtime for scale tests and benchmarks: many simulated container
// instances ("hollow agents") in one process. It runs no containers.
//
// Each hollow instance is a host as droverd sees it, and costs the control plane what a real
// drover-agent costs it:
//
//   - it registers through the real registration endpoint with an activation code, its own ECDSA
//     key and CSR, and gets its own client certificate (Registrar);
//   - it talks to droverd over its own TLS connection (its own http.Transport, presenting that
//     certificate; the instances share nothing but the CA pool), with the same identity rules:
//     it may read and write only its own ContainerInstance, Lease and Tasks;
//   - it renews its heartbeat Lease every interval with an UPDATE of the Lease it last wrote
//     (reading it first only after a failure), as internal/agent/heartbeat.go does, and reports
//     its ContainerInstance status (resources, agentConnected, versions, attributes) at start,
//     after a gap in its heartbeats and every status interval, with a merge patch that carries
//     the resourceVersion it read, as internal/agent/status.go does;
//   - it lists and watches the Tasks bound to it (namespace-scoped, field selector
//     spec.containerInstance=<name>), as internal/agent/engine does, resuming the watch where it
//     ended, and reports each Task RUNNING a configurable delay after it was bound, and STOPPED a
//     configurable delay after desiredStatus became STOPPED, with merge patches on the status
//     subresource that carry the Task's uid as a precondition.
//
// Where the real agent writes PENDING and STOPPING on the way, a hollow instance writes only RUNNING
// and STOPPED. A Fleet can fail chosen task definition revisions (their tasks stop with
// TaskFailedToStart) and kill chosen instances (they stop renewing, watching and reporting, as a
// dead host does).
//
// A hollow instance holds no informer and no cache: per instance there is a transport and its one
// HTTP/2 connection, two small REST clients, six goroutines (heartbeat, Task watch and status
// reports of its own; the watch's decoder, the watch stream's writer and the connection's reader
// from client-go and net/http) and a few words per bound Task. Fleet.PerInstance says what that
// costs.
package hollow
