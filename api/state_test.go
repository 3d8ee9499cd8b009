package api

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
)

func TestNewStateDefaults(t *testing.T) {
	s, err := NewState(StateConfig{})
	if err != nil {
		t.Fatalf("NewState({}) = %v", err)
	}
	if s.RPC == nil || s.Caches == nil || s.Signals == nil || s.Locks == nil || s.Logger == nil || s.Options == nil {
		t.Fatalf("NewState({}) left a field nil: %+v", s)
	}
	if s.Version != Version || s.Hostname == "" {
		t.Errorf("Version, Hostname = %q, %q, want %q and a name", s.Version, s.Hostname, Version)
	}
	if got := s.Caches.Names(); !slices.Equal(got, []string{"default"}) {
		t.Errorf("Caches.Names() = %q, want [default]", got)
	}
	if got := s.Locks.Len(); got != DefaultLocks {
		t.Errorf("Locks.Len() = %d, want %d", got, DefaultLocks)
	}
}

func TestNewState(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	opts := map[string]string{"socket": "127.0.0.1:3031"}
	s, err := NewState(StateConfig{
		MaxRPC:   1,
		Caches:   []CacheConfig{{Name: "a"}, {Name: "b"}},
		Locks:    3,
		Hostname: "node1",
		Options:  opts,
		Logger:   logger,
	})
	if err != nil {
		t.Fatalf("NewState = %v", err)
	}
	opts["socket"] = "changed"
	if got := s.Options["socket"]; got != "127.0.0.1:3031" {
		t.Errorf(`Options["socket"] = %q, want a copy holding "127.0.0.1:3031"`, got)
	}
	if s.Hostname != "node1" || s.Logger != logger || s.Signals.Logger != logger || s.Locks.Len() != 3 {
		t.Errorf("NewState ignored part of its config: %+v", s)
	}
	if got := s.Caches.Default().Name(); got != "a" {
		t.Errorf("Caches.Default().Name() = %q, want %q", got, "a")
	}
	s.RPC.Register("f", constFunc("x"))
	if err := s.RPC.Register("g", constFunc("x")); !errors.Is(err, ErrTooManyRPC) {
		t.Errorf("second Register with MaxRPC 1 = %v, want %v", err, ErrTooManyRPC)
	}
	if got, err := s.RPC.Call(context.Background(), "f"); err != nil || string(got) != "x" {
		t.Errorf("RPC.Call(f) = %q, %v, want %q, nil", got, err, "x")
	}
}

func TestNewStateBadCache(t *testing.T) {
	_, err := NewState(StateConfig{Caches: []CacheConfig{{Name: "a"}, {Name: "a"}}})
	if !errors.Is(err, ErrDuplicateCache) {
		t.Errorf("NewState(duplicate caches) = %v, want %v", err, ErrDuplicateCache)
	}
}
