// Package activation reports whether an Activation still accepts registrations: expired once
// spec.expiresAt has passed, used up once status.registrationsCount reaches the limit.
package activation
