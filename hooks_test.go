package mqttspec

import (
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHookRegistryOrderAndVeto(t *testing.T) {
	hr := NewHookRegistry()
	var got []int
	hr.Register(BeforeRead, func(*HookContext) error { got = append(got, 1); return nil })
	hr.RegisterBefore(OperationRead, func(*HookContext) error { got = append(got, 2); return errors.New("stop") })
	hr.Register(BeforeRead, func(*HookContext) error { got = append(got, 3); return nil })
	err := hr.Execute(BeforeRead, &HookContext{})
	require.EqualError(t, err, "stop", "the hook's own error is returned unchanged")
	require.Equal(t, []int{1, 2}, got)
	require.True(t, hr.HasHooks(BeforeRead))
	require.False(t, hr.HasHooks(AfterRead))
	hr.RegisterAfter(OperationDelete, func(*HookContext) error { return nil })
	require.True(t, hr.HasHooks(AfterDelete))
	hr.Clear(BeforeRead)
	require.False(t, hr.HasHooks(BeforeRead))
	hr.ClearAll()
	require.False(t, hr.HasHooks(AfterDelete))
}

func TestHookPanicBecomesError(t *testing.T) {
	hr := NewHookRegistry()
	hr.Register(BeforeCreate, func(*HookContext) error { panic("boom") })
	err := hr.Execute(BeforeCreate, &HookContext{})
	var p *HookPanic
	require.ErrorAs(t, err, &p)
	require.Equal(t, "boom", p.Value)
	require.Contains(t, string(p.Stack), "hooks_test.go", "the stack shows where it panicked")
	var e *Error
	require.False(t, errors.As(hookError(err), &e), "a panic is not a wire error: its text stays in the log")
}

func TestHookRegistryConcurrent(t *testing.T) {
	hr := NewHookRegistry()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(2)
		go func() { defer wg.Done(); hr.Register(AfterRead, func(*HookContext) error { return nil }) }()
		go func() { defer wg.Done(); _ = hr.Execute(AfterRead, &HookContext{}) }()
	}
	wg.Wait()
	require.True(t, hr.HasHooks(AfterRead))
}

func TestHookErrorCodes(t *testing.T) {
	cases := []struct {
		err  error
		code string
		msg  string
	}{
		{errors.New("permission denied: delete requires admin role"), CodeHookRejected, "permission denied: delete requires admin role"},
		{NewError(CodeForbidden, "admins only"), CodeForbidden, "admins only"},
		{errors.Join(errors.New("ctx"), NewError("quota", "too many")), "quota", "too many"},
		{ErrForbidden, CodeForbidden, "forbidden"},
	}
	for _, tc := range cases {
		var e *Error
		require.ErrorAs(t, hookError(tc.err), &e)
		require.Equal(t, tc.code, e.Code)
		require.Equal(t, tc.msg, e.Message)
	}
}
