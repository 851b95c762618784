package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

// runDelegations runs the approvals.DelegationStore contract on the
// backends that keep delegations (both real ones do).
func runDelegations(t *testing.T, newStore func(t *testing.T) approvals.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s approvals.DelegationStore)
	}{
		{"DelegationsEmpty", testDelegationsEmpty},
		{"DelegationsRoundTrip", testDelegationsRoundTrip},
		{"DelegationsFnErrorAborts", testDelegationsFnErrorAborts},
		{"DelegationsConcurrentNoLostUpdate", testDelegationsConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ds, ok := newStore(t).(approvals.DelegationStore)
			if !ok {
				return // a backend without delegations: the wiring turns the feature off
			}
			tc.run(t, ds)
		})
	}
}

func delegation(from, to string, now time.Time) approvals.Delegation {
	return approvals.Delegation{
		Delegator: approvals.Person{ID: from, Name: "name of " + from},
		Delegate:  approvals.Person{ID: to, Name: "name of " + to},
		Until:     now.Add(7 * 24 * time.Hour), Reason: "on leave", CreatedAt: now,
	}
}

func equalDelegations(a, b []approvals.Delegation) bool {
	return slices.EqualFunc(a, b, func(x, y approvals.Delegation) bool {
		return x.Delegator == y.Delegator && x.Delegate == y.Delegate && x.Until.Equal(y.Until) && x.Reason == y.Reason && x.CreatedAt.Equal(y.CreatedAt)
	})
}

func testDelegationsEmpty(t *testing.T, s approvals.DelegationStore) {
	got, err := s.Delegations(context.Background())
	if err != nil || len(got) != 0 {
		t.Fatalf("Delegations of a new store = %v, %v", got, err)
	}
}

func testDelegationsRoundTrip(t *testing.T, s approvals.DelegationStore) {
	ctx := context.Background()
	now := baseTime()
	want := []approvals.Delegation{delegation("UALICE", "UBOB", now), delegation("UCAROL", "UBOB", now)}
	got, err := s.UpdateDelegations(ctx, func(cur []approvals.Delegation) ([]approvals.Delegation, error) {
		if len(cur) != 0 {
			return nil, fmt.Errorf("fn saw %v in a new store", cur)
		}
		return want, nil
	})
	if err != nil || !equalDelegations(got, want) {
		t.Fatalf("UpdateDelegations = %v, %v", got, err)
	}
	read, err := s.Delegations(ctx)
	if err != nil || !equalDelegations(read, want) {
		t.Fatalf("Delegations = %+v, %v; want %+v", read, err, want)
	}
	// Dropping one leaves the other.
	if _, err := s.UpdateDelegations(ctx, func(cur []approvals.Delegation) ([]approvals.Delegation, error) {
		return cur[1:], nil
	}); err != nil {
		t.Fatal(err)
	}
	read, err = s.Delegations(ctx)
	if err != nil || !equalDelegations(read, want[1:]) {
		t.Fatalf("after dropping one: %+v, %v", read, err)
	}
}

func testDelegationsFnErrorAborts(t *testing.T, s approvals.DelegationStore) {
	ctx := context.Background()
	now := baseTime()
	first := []approvals.Delegation{delegation("UALICE", "UBOB", now)}
	if _, err := s.UpdateDelegations(ctx, func([]approvals.Delegation) ([]approvals.Delegation, error) { return first, nil }); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("no chains")
	_, err := s.UpdateDelegations(ctx, func(cur []approvals.Delegation) ([]approvals.Delegation, error) {
		return nil, stop
	})
	if !errors.Is(err, stop) {
		t.Fatalf("fn's error came back as %v", err)
	}
	if read, err := s.Delegations(ctx); err != nil || !equalDelegations(read, first) {
		t.Fatalf("an aborted update changed the delegations: %v, %v", read, err)
	}
}

// Concurrent writers (replicas) each add one delegation: none is lost.
func testDelegationsConcurrent(t *testing.T, s approvals.DelegationStore) {
	ctx := context.Background()
	now := baseTime()
	const n = 10
	errs := make([]error, n)
	race(n, func(i int) {
		_, errs[i] = s.UpdateDelegations(ctx, func(cur []approvals.Delegation) ([]approvals.Delegation, error) {
			return append(cur, delegation(fmt.Sprintf("U%02d", i), "UBOB", now)), nil
		})
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	read, err := s.Delegations(ctx)
	if err != nil || len(read) != n {
		t.Fatalf("%d delegations after %d concurrent adds: %v", len(read), n, err)
	}
}
