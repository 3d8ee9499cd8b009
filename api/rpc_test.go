package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// constFunc returns an RPCFunc that always answers s.
func constFunc(s string) RPCFunc {
	return func(context.Context, [][]byte) ([]byte, error) { return []byte(s), nil }
}

func TestRegistryRegisterName(t *testing.T) {
	tests := []struct {
		name    string
		wantErr error
	}{
		{"", ErrRPCName},
		{"a", nil},
		{"hello", nil},
		{strings.Repeat("x", MaxRPCName), nil},
		{strings.Repeat("x", MaxRPCName+1), ErrRPCName},
	}
	for _, tt := range tests {
		r := NewRegistry(0)
		err := r.Register(tt.name, constFunc("ok"))
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("Register(%d-byte name) = %v, want %v", len(tt.name), err, tt.wantErr)
		}
		if _, ok := r.Lookup(tt.name); ok != (tt.wantErr == nil) {
			t.Errorf("Lookup(%d-byte name) found = %v, want %v", len(tt.name), ok, tt.wantErr == nil)
		}
	}
}

func TestRegistryRegisterNil(t *testing.T) {
	r := NewRegistry(0)
	if err := r.Register("f", nil); !errors.Is(err, ErrNilFunc) {
		t.Errorf("Register(nil) = %v, want %v", err, ErrNilFunc)
	}
}

func TestRegistryReplaceAndUnregister(t *testing.T) {
	ctx := context.Background()
	r := NewRegistry(0)
	for _, v := range []string{"one", "two"} {
		if err := r.Register("f", constFunc(v)); err != nil {
			t.Fatalf("Register(f) = %v", err)
		}
		got, err := r.Call(ctx, "f")
		if err != nil || string(got) != v {
			t.Errorf("Call(f) = %q, %v, want %q, nil", got, err, v)
		}
	}
	if got := r.Len(); got != 1 {
		t.Errorf("Len() = %d, want 1", got)
	}
	if !r.Unregister("f") {
		t.Errorf("Unregister(f) = false, want true")
	}
	if r.Unregister("f") {
		t.Errorf("second Unregister(f) = true, want false")
	}
	if _, err := r.Call(ctx, "f"); !errors.Is(err, ErrNoSuchFunction) {
		t.Errorf("Call(f) after Unregister = %v, want %v", err, ErrNoSuchFunction)
	}
}

func TestRegistryLimit(t *testing.T) {
	r := NewRegistry(2)
	for _, name := range []string{"a", "b"} {
		if err := r.Register(name, constFunc(name)); err != nil {
			t.Fatalf("Register(%q) = %v", name, err)
		}
	}
	if err := r.Register("c", constFunc("c")); !errors.Is(err, ErrTooManyRPC) {
		t.Errorf("Register(c) over limit = %v, want %v", err, ErrTooManyRPC)
	}
	// Replacing an existing name does not need a new slot.
	if err := r.Register("a", constFunc("a2")); err != nil {
		t.Errorf("Register(a) again at limit = %v, want nil", err)
	}
	r.Unregister("b")
	if err := r.Register("c", constFunc("c")); err != nil {
		t.Errorf("Register(c) after Unregister = %v, want nil", err)
	}
	if got, want := r.Names(), []string{"a", "c"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
}

func TestRegistryDefaultLimit(t *testing.T) {
	r := NewRegistry(0)
	for i := range DefaultMaxRPC {
		if err := r.Register(fmt.Sprint("f", i), constFunc("")); err != nil {
			t.Fatalf("Register #%d = %v", i, err)
		}
	}
	if err := r.Register("one-more", constFunc("")); !errors.Is(err, ErrTooManyRPC) {
		t.Errorf("Register past default limit = %v, want %v", err, ErrTooManyRPC)
	}
}

func TestRegistryZeroValue(t *testing.T) {
	var r Registry
	if _, ok := r.LookupBytes([]byte("f")); ok {
		t.Errorf("LookupBytes(f) on zero Registry found a function")
	}
	if err := r.Register("f", constFunc("x")); err != nil {
		t.Fatalf("Register on zero Registry = %v", err)
	}
	if got, err := r.Call(context.Background(), "f"); err != nil || string(got) != "x" {
		t.Errorf("Call(f) = %q, %v, want %q, nil", got, err, "x")
	}
}

func TestRegistryCall(t *testing.T) {
	ctx := context.Background()
	r := NewRegistry(0)
	join := func(_ context.Context, args [][]byte) ([]byte, error) {
		return bytes.Join(args, []byte(",")), nil
	}
	noResult := func(context.Context, [][]byte) ([]byte, error) { return nil, ErrNoResult }
	boom := func(context.Context, [][]byte) ([]byte, error) { panic("boom") }
	for name, fn := range map[string]RPCFunc{"join": join, "none": noResult, "boom": boom} {
		if err := r.Register(name, fn); err != nil {
			t.Fatalf("Register(%q) = %v", name, err)
		}
	}
	tooMany := make([][]byte, MaxRPCArgs+1)
	maxArgs := make([][]byte, MaxRPCArgs)

	tests := []struct {
		name    string
		args    [][]byte
		want    string
		wantErr error
	}{
		{"join", nil, "", nil},
		{"join", [][]byte{[]byte("a"), []byte("b")}, "a,b", nil},
		{"join", maxArgs, strings.Repeat(",", MaxRPCArgs-1), nil},
		{"join", tooMany, "", ErrTooManyArgs},
		{"none", nil, "", ErrNoResult},
		{"boom", nil, "", ErrRPCPanic},
		{"missing", nil, "", ErrNoSuchFunction},
	}
	for _, tt := range tests {
		got, err := r.Call(ctx, tt.name, tt.args...)
		if string(got) != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("Call(%q, %d args) = %q, %v, want %q, %v", tt.name, len(tt.args), got, err, tt.want, tt.wantErr)
		}
		got, err = r.CallBytes(ctx, []byte(tt.name), tt.args)
		if string(got) != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("CallBytes(%q, %d args) = %q, %v, want %q, %v", tt.name, len(tt.args), got, err, tt.want, tt.wantErr)
		}
	}
}

func TestRegistryPanicError(t *testing.T) {
	r := NewRegistry(0)
	r.Register("boom", func(context.Context, [][]byte) ([]byte, error) { panic("kaboom") })
	_, err := r.Call(context.Background(), "boom")
	pe, ok := errors.AsType[*PanicError](err)
	if !ok {
		t.Fatalf("Call(boom) error = %v, want a *PanicError", err)
	}
	if pe.Func != "boom" || pe.Value != "kaboom" || len(pe.Stack) == 0 {
		t.Errorf("PanicError = {Func: %q, Value: %v, %d-byte stack}, want {boom, kaboom, a stack}", pe.Func, pe.Value, len(pe.Stack))
	}
	if msg := err.Error(); !strings.Contains(msg, "boom") || !strings.Contains(msg, "kaboom") {
		t.Errorf("Call(boom) error message = %q, want the name and the panic value", msg)
	}
}

func TestRegistryErrorMessageHasName(t *testing.T) {
	_, err := NewRegistry(0).Call(context.Background(), "nosuch")
	if err == nil || !strings.Contains(err.Error(), `"nosuch"`) {
		t.Errorf("Call(nosuch) error = %v, want it to name the function", err)
	}
}

func TestRegistryLookupBytesNoAlloc(t *testing.T) {
	r := NewRegistry(0)
	r.Register("hello", constFunc("world"))
	name := []byte("hello")
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := r.LookupBytes(name); !ok {
			t.Fatal("LookupBytes(hello) not found")
		}
	})
	if allocs != 0 {
		t.Errorf("LookupBytes allocs = %v, want 0", allocs)
	}
}

// TestRegistryConcurrent exercises lock-free lookups against writers; it
// proves its point under -race.
func TestRegistryConcurrent(t *testing.T) {
	ctx := context.Background()
	r := NewRegistry(0)
	r.Register("stable", constFunc("ok"))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				name := fmt.Sprintf("w%d-%d", w, i%10)
				if err := r.Register(name, constFunc(name)); err != nil {
					t.Errorf("Register(%q) = %v", name, err)
					return
				}
				r.Unregister(name)
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				got, err := r.Call(ctx, "stable")
				if err != nil || string(got) != "ok" {
					t.Errorf("Call(stable) = %q, %v, want %q, nil", got, err, "ok")
					return
				}
				r.Names()
			}
		})
	}
	wg.Wait()
	if got := r.Names(); !slices.Equal(got, []string{"stable"}) {
		t.Errorf("Names() after writers = %q, want [stable]", got)
	}
}

func BenchmarkRegistryLookupBytes(b *testing.B) {
	r := NewRegistry(0)
	for i := range 100 {
		r.Register(fmt.Sprint("func", i), constFunc(""))
	}
	name := []byte("func42")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := r.LookupBytes(name); !ok {
			b.Fatal("not found")
		}
	}
}
