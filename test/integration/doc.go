// Package integration tests droverd's API server in-process: real etcd, real validation, real
// authentication and authorization, asserting the state the server ends in.
package integration
