package gointerp

import (
	"context"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
)

type callableFunc func(ctx context.Context, args []api.Value) (api.Value, error)

func (f callableFunc) Call(ctx context.Context, args []api.Value) (api.Value, error) {
	return f(ctx, args)
}

func TestToValue(t *testing.T) {
	type myInt int
	var nilMap map[string]int
	var nilPtr *int
	c := &converter{wrap: func(reflect.Value) (api.Callable, error) {
		return callableFunc(func(context.Context, []api.Value) (api.Value, error) { return "wrapped", nil }), nil
	}}
	tests := []struct {
		in   any
		want api.Value
	}{
		{nil, nil}, {true, true}, {int8(-3), int64(-3)}, {myInt(7), int64(7)}, {uint16(9), int64(9)},
		{uint64(math.MaxUint64), float64(math.MaxUint64)}, {float32(0.5), 0.5}, {"s", "s"},
		{[]byte("b"), []byte("b")}, {[2]byte{1, 2}, []byte{1, 2}}, {1500 * time.Millisecond, 1.5},
		{[]int{1, 2}, []api.Value{int64(1), int64(2)}}, {[]any{"a", nil}, []api.Value{"a", nil}},
		{map[string]int{"a": 1}, map[string]api.Value{"a": int64(1)}}, {nilMap, map[string]api.Value{}}, {nilPtr, nil},
	}
	for _, tt := range tests {
		got, err := c.toValue(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("toValue(%#v) = %#v, %v; want %#v", tt.in, got, err, tt.want)
		}
	}
	fn, err := c.toValue(func() {})
	if cl, ok := fn.(api.Callable); !ok || err != nil {
		t.Errorf("toValue(func) = %#v, %v", fn, err)
	} else if res, _ := cl.Call(context.Background(), nil); res != "wrapped" {
		t.Errorf("the wrapped function returned %v", res)
	}
	x := 1
	loop := []any{nil}
	loop[0] = loop
	for _, bad := range []any{struct{}{}, &x, map[int]int{1: 1}, make(chan int), loop} {
		if got, err := c.toValue(bad); !errors.Is(err, ErrConvert) {
			t.Errorf("toValue(%T) = %#v, %v; want ErrConvert", bad, got, err)
		}
	}
}

func TestAssign(t *testing.T) {
	c := &converter{}
	tests := []struct {
		in   api.Value
		typ  reflect.Type
		want any
	}{
		{"x", reflect.TypeFor[string](), "x"},
		{int64(3), reflect.TypeFor[string](), "3"},
		{0.5, reflect.TypeFor[string](), "0.5"},
		{" 42 ", reflect.TypeFor[int](), 42},
		{"1e3", reflect.TypeFor[int64](), int64(1000)},
		{2.0, reflect.TypeFor[int8](), int8(2)},
		{"2.5", reflect.TypeFor[float32](), float32(2.5)},
		{"3", reflect.TypeFor[uint](), uint(3)},
		{true, reflect.TypeFor[bool](), true},
		{"ab", reflect.TypeFor[[]byte](), []byte("ab")},
		{nil, reflect.TypeFor[int](), 0},
		{int64(2), reflect.TypeFor[any](), int64(2)},
		{"1.5", reflect.TypeFor[time.Duration](), 1500 * time.Millisecond},
		{[]api.Value{"1", int64(2)}, reflect.TypeFor[[]int](), []int{1, 2}},
		{map[string]api.Value{"a": "x"}, reflect.TypeFor[map[string]string](), map[string]string{"a": "x"}},
		{[]api.Value{int64(1)}, reflect.TypeFor[any](), []any{int64(1)}},
	}
	for _, tt := range tests {
		got, err := c.assign(tt.in, tt.typ, 0)
		if err != nil || !reflect.DeepEqual(got.Interface(), tt.want) {
			t.Errorf("assign(%#v, %s) = %#v, %v; want %#v", tt.in, tt.typ, got, err, tt.want)
		}
	}
	for _, bad := range []struct {
		in  api.Value
		typ reflect.Type
	}{
		{"x", reflect.TypeFor[int]()}, {1.5, reflect.TypeFor[int]()}, {int64(300), reflect.TypeFor[uint8]()},
		{int64(-1), reflect.TypeFor[uint]()}, {"x", reflect.TypeFor[bool]()}, {[]api.Value{}, reflect.TypeFor[string]()},
		{int64(1), reflect.TypeFor[struct{}]()}, {"x", reflect.TypeFor[error]()},
	} {
		if got, err := c.assign(bad.in, bad.typ, 0); !errors.Is(err, ErrConvert) {
			t.Errorf("assign(%#v, %s) = %v, %v; want ErrConvert", bad.in, bad.typ, got, err)
		}
	}
	// A Callable given to a function-typed parameter.
	cl := callableFunc(func(_ context.Context, args []api.Value) (api.Value, error) {
		if len(args) == 1 && args[0] == int64(1) {
			return "one", nil
		}
		return nil, errors.New("no")
	})
	rv, err := c.assign(cl, reflect.TypeFor[func(int) (string, error)](), 0)
	if err != nil {
		t.Fatal(err)
	}
	fn := rv.Interface().(func(int) (string, error))
	if s, err := fn(1); s != "one" || err != nil {
		t.Errorf("fn(1) = %q, %v", s, err)
	}
	if _, err := fn(2); err == nil {
		t.Error("fn(2) did not fail")
	}
	if g, ok := c.toGo(cl).(func(...any) (any, error)); !ok {
		t.Errorf("toGo(Callable) = %T", c.toGo(cl))
	} else if s, err := g(1); s != "one" || err != nil {
		t.Errorf("g(1) = %v, %v", s, err)
	}
}
