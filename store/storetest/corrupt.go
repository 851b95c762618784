package storetest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

// CheckCorrupt checks how a store treats records it cannot decode. No
// store's interface can write one, so a backend's test damages the records
// of badIDs behind the store's back, each left in the due index as due at
// or before before, among sound tasks of which wantDue (earliest first) are
// due by then; it then calls CheckCorrupt with the store (reopened, where
// opening is what is to be tested).
//
// The store must walk Due past the damaged records, naming each once in
// Corrupt, at every page size; Get, Update and Create of a damaged record
// must fail with an error that matches approvals.ErrCorrupt and names it
// (*approvals.CorruptError), leaving it as it is; the sound tasks must stay
// readable and writable.
func CheckCorrupt(t *testing.T, s approvals.Store, before time.Time, badIDs, wantDue []string) {
	t.Helper()
	ctx := t.Context()
	wantBad := slices.Sorted(slices.Values(badIDs))
	for _, limit := range []int{1, 2, 100} {
		tasks, corrupt, _ := walkDue(t, s, before, limit)
		if got := ids(tasks); !equalStrings(got, wantDue) {
			t.Errorf("Due walk (limit %d) = %v, want the sound tasks %v", limit, got, wantDue)
		}
		if got := slices.Sorted(slices.Values(corrupt)); !equalStrings(got, wantBad) {
			t.Errorf("Due walk (limit %d) named corrupt %v, want each of %v once", limit, got, wantBad)
		}
	}

	for _, id := range badIDs {
		_, err := s.Get(ctx, id)
		checkCorruptErr(t, "Get", id, err)

		called := false
		_, err = s.Update(ctx, id, func(*approvals.Task) error {
			called = true
			return nil
		})
		checkCorruptErr(t, "Update", id, err)
		if called {
			t.Errorf("Update(%s) of a damaged record called fn", id)
		}

		// Intake of the same id must not write over what someone should
		// look at.
		now := baseTime()
		task := pendingTask("again", now, now.Add(time.Hour))
		task.ID = id
		stored, created, err := s.Create(ctx, task)
		if created || stored != nil || !errors.Is(err, approvals.ErrCorrupt) {
			t.Errorf("Create(%s) over a damaged record = %v, created %v, err %v; want ErrCorrupt", id, stored, created, err)
		}
		_, err = s.Get(ctx, id)
		checkCorruptErr(t, "Get after Create", id, err)
	}

	for _, id := range wantDue {
		if _, err := s.Update(ctx, id, func(*approvals.Task) error { return nil }); err != nil {
			t.Errorf("Update(%s) of a sound task beside damaged ones: %v", id, err)
		}
		mustGet(t, s, id)
	}
}

func checkCorruptErr(t *testing.T, op, id string, err error) {
	t.Helper()
	var ce *approvals.CorruptError
	switch {
	case !errors.Is(err, approvals.ErrCorrupt):
		t.Errorf("%s(%s) of a damaged record: err = %v, want ErrCorrupt", op, id, err)
	case !errors.As(err, &ce) || ce.Key != id:
		t.Errorf("%s(%s): err = %v, want a *approvals.CorruptError with Key %q", op, id, err, id)
	case !strings.Contains(err.Error(), id):
		t.Errorf("%s(%s): err = %q does not name the record", op, id, err)
	case errors.Is(err, approvals.ErrNotFound) || errors.Is(err, approvals.ErrUnavailable):
		t.Errorf("%s(%s): err = %v also claims not found or unavailable", op, id, err)
	}
}
