package liveness

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

func TestAbsorb(t *testing.T) {
	key := types.NamespacedName{Namespace: "default", Name: "store-1"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

	r := New(10*time.Second, time.Minute)
	if r.Absorb(key, "u1", at(0), at(5)) {
		t.Fatal("an inactive record keeps nothing")
	}
	r.Activate()
	if r.Absorb(key, "u1", at(0), at(5)) {
		t.Fatal("the first renewal of a Lease is written: the record knows of no earlier one")
	}
	r.Written(key, "u1", at(5))
	cases := []struct {
		name          string
		uid           types.UID
		stored, renew float64
		want          bool
		wantLastRenew float64
	}{
		{"next renewal", "u1", 5, 10, true, 10},
		{"again", "u1", 5, 15, true, 15},
		{"another Lease of the same name", "u2", 5, 20, false, 15},
		{"a renewal after a gap of the grace period", "u1", 5, 25, false, 15},
		{"clock went back", "u1", 5, 14, false, 15},
	}
	for _, c := range cases {
		got := r.Absorb(key, c.uid, at(c.stored), at(c.renew))
		if got != c.want {
			t.Errorf("%s: Absorb = %v, want %v", c.name, got, c.want)
		}
		last, _ := r.Last(key)
		if !last.RenewTime.Equal(at(c.wantLastRenew)) {
			t.Errorf("%s: last renewal %s, want %s", c.name, last.RenewTime, at(c.wantLastRenew))
		}
	}
	r.Written(key, "u1", at(62))
	if r.Absorb(key, "u1", at(5), at(65)) {
		t.Error("a renewal a persist interval after the stored renewTime is written")
	}
	if !r.Absorb(key, "u1", at(60), at(65)) {
		t.Error("once written, the next renewal is kept again")
	}
	if got, ok := r.Newer(key, "u1", at(60)); !ok || !got.Equal(at(65)) {
		t.Errorf("Newer than the stored 60 s: got %s %v, want the kept 65 s", got, ok)
	}
	if _, ok := r.Newer(key, "u1", at(65)); ok {
		t.Error("a kept renewal no later than the stored one is not newer")
	}
	if _, ok := r.Newer(key, "u2", time.Time{}); ok {
		t.Error("a kept renewal of another Lease of the same name is not newer")
	}
	r.Forget(key)
	if _, ok := r.Last(key); ok {
		t.Error("a forgotten Lease has no renewal")
	}
	r.Written(key, "u1", at(30))
	r.Deactivate()
	if _, ok := r.Last(key); ok || r.Absorb(key, "u1", at(30), at(31)) {
		t.Error("a deactivated record holds and keeps nothing")
	}
	var none *Renewals
	if none.Active() || none.Absorb(key, "u1", at(0), at(1)) {
		t.Error("a nil record is never active")
	}
}

func TestAbsorbAfterAGapTellsOnReturn(t *testing.T) {
	key := types.NamespacedName{Namespace: "default", Name: "store-1"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

	r := New(10*time.Second, time.Minute)
	r.Activate()
	r.Written(key, "u1", at(5))
	var told []types.NamespacedName
	r.OnReturn(func(k types.NamespacedName) { told = append(told, k) })

	if !r.Absorb(key, "u1", at(5), at(10)) || len(told) != 0 {
		t.Fatalf("a renewal without a gap is kept and told of to nobody: told %v", told)
	}
	other := types.NamespacedName{Namespace: "default", Name: "store-2"}
	if !r.Absorb(other, "u9", at(9), at(10)) || len(told) != 1 || told[0] != other {
		t.Fatalf("the first renewal the record holds of a Lease is kept and told of: told %v", told)
	}
	told = nil
	if !r.Absorb(key, "u1", at(5), at(25)) {
		t.Fatal("a renewal after a gap is kept in memory when someone is told of it")
	}
	if len(told) != 1 || told[0] != key {
		t.Fatalf("told of %v, want [%s]", told, key)
	}
	if last, _ := r.Last(key); !last.RenewTime.Equal(at(25)) {
		t.Errorf("last renewal %s, want %s", last.RenewTime, at(25))
	}
	if r.Absorb(key, "u1", at(5), at(66)) || len(told) != 1 {
		t.Error("a renewal a persist interval after the stored one is written, gap or not, and told of to nobody")
	}

	// Deactivating forgets the function: a renewal after a gap is written again.
	r.Deactivate()
	r.Activate()
	r.Written(key, "u1", at(70))
	if r.Absorb(key, "u1", at(70), at(85)) || len(told) != 1 {
		t.Errorf("after Deactivate, a renewal after a gap is written: told %v", told)
	}
}
