// Package identity names the identities of container instances: the subject of the client
// certificate a host receives at registration, and how droverd reads it back.
package identity

import (
	"strings"
)

const (
	// InstancesGroup holds every container instance identity.
	InstancesGroup = "system:drover:instances"
	// instancePrefix starts an instance's user name: system:drover:instance:<namespace>:<name>.
	instancePrefix = "system:drover:instance:"
	// uidGroupPrefix starts the group that binds a certificate to one ContainerInstance object:
	// a certificate issued to an instance that was deleted and registered again under the same
	// name does not carry the new object's UID.
	uidGroupPrefix = "system:drover:instance-uid:"
)

// Instance is a container instance identity.
type Instance struct {
	Namespace, Name, UID string
}

// User is the instance's user name (the certificate's CN).
func (i Instance) User() string { return instancePrefix + i.Namespace + ":" + i.Name }

// Groups are the instance's groups (the certificate's O fields).
func (i Instance) Groups() []string { return []string{InstancesGroup, uidGroupPrefix + i.UID} }

// FromUser reads an instance identity from a user name and groups; ok is false for any other user.
func FromUser(name string, groups []string) (Instance, bool) {
	rest, found := strings.CutPrefix(name, instancePrefix)
	if !found {
		return Instance{}, false
	}
	ns, n, found := strings.Cut(rest, ":")
	if !found || ns == "" || n == "" || strings.Contains(n, ":") {
		return Instance{}, false
	}
	in := Instance{Namespace: ns, Name: n}
	member := false
	for _, g := range groups {
		if g == InstancesGroup {
			member = true
		}
		if uid, ok := strings.CutPrefix(g, uidGroupPrefix); ok {
			in.UID = uid
		}
	}
	return in, member && in.UID != ""
}
