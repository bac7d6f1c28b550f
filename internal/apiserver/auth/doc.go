// Package auth authenticates droverd's callers (x509 client certificates, and anonymous callers
// on the health endpoints only) and authorizes them with a small fixed set of roles bound to groups.
package auth
