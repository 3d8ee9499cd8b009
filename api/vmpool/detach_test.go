package vmpool

import (
	"context"
	"testing"

	"github.com/scripthost/scripthost/api"
)

func get(t *testing.T, pl *Pool[*fakeVM]) (*fakeVM, bool) {
	t.Helper()
	v, build, err := pl.Get(t.Context(), nil)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return v, build
}

func TestDetachFilledPool(t *testing.T) {
	a, b := &fakeVM{id: 1}, &fakeVM{id: 2}
	pl := newTestPool(0)
	pl.Put(a)
	if v, _ := get(t, pl); v != a {
		t.Fatalf("Get = %v, want a", v)
	}
	pl.Detach(a)
	pl.Detach(a) // twice: once
	if n := pl.Detached(); n != 1 {
		t.Fatalf("Detached() = %d, want 1", n)
	}
	if v, build := get(t, pl); v != nil || !build {
		t.Fatalf("Get after Detach = %v, build %v; want a build", v, build)
	}
	pl.Put(b) // what the caller built
	pl.Put(a) // the detached one comes back: no place left
	if a.closes.Load() != 1 {
		t.Errorf("the detached interpreter was closed %d times, want 1", a.closes.Load())
	}
	if got := pl.Idle(); len(got) != 1 || got[0] != b {
		t.Errorf("Idle() = %v, want [b]", got)
	}
	if v, build := get(t, pl); v != b || build {
		t.Errorf("Get = %v, build %v; want b", v, build)
	}
}

func TestDetachedComesBackToItsPlace(t *testing.T) {
	a := &fakeVM{id: 1}
	pl := newTestPool(0)
	pl.Put(a)
	get(t, pl)
	pl.Detach(a)
	pl.Put(a) // before anyone built in its place
	if a.closes.Load() != 0 || pl.Detached() != 0 {
		t.Fatalf("closes %d, detached %d; want 0, 0", a.closes.Load(), pl.Detached())
	}
	if v, build := get(t, pl); v != a || build {
		t.Errorf("Get = %v, build %v; want a", v, build)
	}
}

func TestDetachGrowingPool(t *testing.T) {
	pl := newTestPool(1)
	if _, build := get(t, pl); !build {
		t.Fatal("first Get of a growing pool: no build")
	}
	a := &fakeVM{id: 1}
	pl.Detach(a)
	if n := pl.Size(); n != 0 {
		t.Fatalf("Size() = %d after Detach, want 0", n)
	}
	if _, build := get(t, pl); !build {
		t.Fatal("Get after Detach: no build")
	}
	pl.Put(a)
	if a.closes.Load() != 1 || pl.Size() != 1 {
		t.Errorf("closes %d, size %d; want 1, 1", a.closes.Load(), pl.Size())
	}
}

func TestDetachPassesThePlaceToAWaiter(t *testing.T) {
	a := &fakeVM{id: 1}
	pl := newTestPool(0)
	pl.Put(a)
	get(t, pl)
	c := startGet(t, pl, nil)
	waitFor(t, "the call to wait", func() bool { return queued(pl) == 1 })
	pl.Detach(a)
	if r := <-c.res; r.err != nil || !r.build {
		t.Fatalf("waiter got %v, build %v, %v; want a build", r.v, r.build, r.err)
	}
}

func TestDiscardDetached(t *testing.T) {
	a, b := &fakeVM{id: 1}, &fakeVM{id: 2}
	pl := newTestPool(0)
	pl.Put(a)
	get(t, pl)
	pl.Detach(a)
	a.close()
	if !pl.Discard(a) {
		t.Error("Discard of a detached interpreter whose place is free: no replacement asked")
	}
	pl.Put(b)
	get(t, pl)
	pl.Detach(b)
	get(t, pl) // builds in b's place
	b.close()
	if pl.Discard(b) {
		t.Error("Discard of a detached interpreter whose place was refilled: a replacement asked")
	}
}

func TestLendDetachesThroughTheContext(t *testing.T) {
	a := &fakeVM{id: 1}
	pl := newTestPool(0)
	pl.Put(a)
	get(t, pl)
	ctx := pl.Lend(context.Background(), a)
	api.DetachCall(ctx)
	api.DetachCall(ctx)
	if n := pl.Detached(); n != 1 {
		t.Errorf("Detached() = %d, want 1", n)
	}
	api.DetachCall(context.Background()) // nothing lent: nothing happens
}
