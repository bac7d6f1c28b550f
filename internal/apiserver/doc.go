// Package apiserver assembles droverd's API server: k8s.io/apiextensions-apiserver serving the
// ecs.drover.dev CRDs, the built-in groups kubectl and controllers need, droverd's own
// authentication, authorization and admission, storage in etcd (embedded or external), and the
// tunnels agents open, over which task logs are read (package tunnel).
package apiserver
