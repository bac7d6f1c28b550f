// Package liveness keeps container instances' heartbeat renewals in memory, so that a renewal
// costs droverd no storage write.
//
// An agent renews its Lease every few seconds, and each renewal used to be one etcd write: at
// 5,000 instances and a renewal every 5 s, 1,000 writes a second, nearly all of them only moving
// spec.renewTime. While droverd runs the controllers (it is their leader), its Lease storage
// records such a renewal here instead and answers it as if it had been written. A Lease is still
// written when anything else in it changes, when the stored renewTime is older than the persist
// interval, so what etcd holds is never more than that far behind, and when the record holds no
// earlier renewal of the Lease or the renewal follows a gap of a grace period or more, and nothing
// in this process is told of that (see OnReturn): the containerinstance controller must see the
// instance come back, and a write moves its watch. The controller in droverd's own process is told
// (so under overload, when failed renewals make gaps, and after a restart, when the record is
// empty, renewals do not turn into etcd writes just when droverd can least afford them). The
// containerinstance controller reads renewals from here as well as from the Lease; reads of a
// Lease through droverd show the latest renewal.
//
// Renewals that reach a droverd that is not the leader are written as before, and a new leader
// starts with an empty record: its controller gives every connected instance a full grace period
// from its start, which covers renewals its predecessor held only in memory.
package liveness

import (
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// DefaultPersistInterval is how far a Lease's stored renewTime may fall behind its last renewal:
// at 5,000 instances, about 42 writes a second.
const DefaultPersistInterval = 2 * time.Minute

// Renewals records heartbeat renewals accepted without a storage write. The zero value is not
// usable; call New. A nil *Renewals records nothing and is never active.
type Renewals struct {
	// maxGap is the longest gap between two renewals of an instance for the second to be kept in
	// memory: the controller's grace period, so that a renewal after the instance may have been
	// marked disconnected is written and seen.
	maxGap time.Duration
	// persistInterval bounds how old a Lease's stored renewTime may be.
	persistInterval time.Duration

	active atomic.Bool
	mu     sync.RWMutex
	m      map[types.NamespacedName]Renewal
	// returned, when set, is told of a renewal kept in memory that the record held nothing of or
	// that follows a gap of maxGap or more.
	returned func(types.NamespacedName)
}

// Renewal is the latest renewal of one Lease.
type Renewal struct {
	// UID is the Lease's: a Lease deleted and created again under its name starts afresh.
	UID types.UID
	// RenewTime is the spec.renewTime the agent sent.
	RenewTime time.Time
}

// New returns an inactive record. maxGap is the grace period after which the containerinstance
// controller marks an instance disconnected; persistInterval bounds how old a stored renewTime
// may be.
func New(maxGap, persistInterval time.Duration) *Renewals {
	return &Renewals{maxGap: maxGap, persistInterval: persistInterval, m: map[types.NamespacedName]Renewal{}}
}

// Activate starts keeping renewals in memory; droverd calls it once its controllers lead.
func (r *Renewals) Activate() {
	if r != nil {
		r.active.Store(true)
	}
}

// Deactivate stops keeping renewals in memory and forgets those it holds and the function set
// with OnReturn: droverd calls it when its controllers stop, after which its renewals are written
// as they arrive.
func (r *Renewals) Deactivate() {
	if r == nil {
		return
	}
	r.active.Store(false)
	r.mu.Lock()
	clear(r.m)
	r.returned = nil
	r.mu.Unlock()
}

// Active reports whether renewals may be kept in memory.
func (r *Renewals) Active() bool { return r != nil && r.active.Load() }

// Last returns the latest renewal recorded for the Lease key, if any.
func (r *Renewals) Last(key types.NamespacedName) (Renewal, bool) {
	if r == nil {
		return Renewal{}, false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	got, ok := r.m[key]
	return got, ok
}

// Newer returns the renewal recorded for the Lease key when it belongs to the same Lease (uid)
// and is later than stored, the renewTime the Lease itself holds (zero for none).
func (r *Renewals) Newer(key types.NamespacedName, uid types.UID, stored time.Time) (time.Time, bool) {
	got, ok := r.Last(key)
	if !ok || got.UID != uid || !got.RenewTime.After(stored) {
		return time.Time{}, false
	}
	return got.RenewTime, true
}

// Absorb decides whether a renewal of the Lease key (uid) to renewTime, whose stored renewTime
// is stored, may be kept in memory instead of written, and if so records it. It may when the
// record is active, the renewal is not older than the last one recorded, and the stored renewTime
// is less than the persist interval old. A renewal the controller may not know of yet - the first
// the record holds for the Lease, or one after a gap of the grace period or more, when the
// instance may have been marked disconnected - moves no watch, so it is kept only when a function
// set with OnReturn is told of it instead.
func (r *Renewals) Absorb(key types.NamespacedName, uid types.UID, stored, renewTime time.Time) bool {
	if !r.Active() {
		return false
	}
	r.mu.Lock()
	prev, ok := r.m[key]
	returned := r.returned
	news := !ok || prev.UID != uid || renewTime.Sub(prev.RenewTime) >= r.maxGap
	if (news && returned == nil) || renewTime.Sub(stored) >= r.persistInterval || (ok && prev.UID == uid && renewTime.Before(prev.RenewTime)) {
		r.mu.Unlock()
		return false
	}
	r.m[key] = Renewal{UID: uid, RenewTime: renewTime}
	r.mu.Unlock()
	if news {
		returned(key)
	}
	return true
}

// OnReturn sets the function told of a renewal kept in memory that the record held nothing of or
// that follows a gap of the grace period or more; it must not block. Without one, such a renewal
// is written, so that the Lease's watchers see it. The containerinstance controller running in
// the same process sets it, to look at the instance again at once.
func (r *Renewals) OnReturn(f func(types.NamespacedName)) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.returned = f
	r.mu.Unlock()
}

// Written records a renewal that was written to storage, so that the next one may be kept in
// memory.
func (r *Renewals) Written(key types.NamespacedName, uid types.UID, renewTime time.Time) {
	if !r.Active() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.m[key]; ok && prev.UID == uid && prev.RenewTime.After(renewTime) {
		return
	}
	r.m[key] = Renewal{UID: uid, RenewTime: renewTime}
}

// Forget drops the record of the Lease key, when it is deleted.
func (r *Renewals) Forget(key types.NamespacedName) {
	if r == nil {
		return
	}
	r.mu.Lock()
	delete(r.m, key)
	r.mu.Unlock()
}
