package dynamodb_test

import (
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/internal/dynalitetest"
	ddbstore "github.com/approvalbot/approvalbot/store/dynamodb"
)

// TestLoopLeases: one owner at a time; the holder renews; another takes
// over once the lease ran out, or at once when it is handed back; the
// lease item never shows up as a task.
func TestLoopLeases(t *testing.T) {
	t.Parallel()
	client, table := dynalitetest.NewTable(t)
	store := ddbstore.New(client, table)
	ctx := t.Context()
	now := time.Now()
	try := func(owner string, at time.Time) bool {
		t.Helper()
		ok, err := store.TryLoop(ctx, "sweep", owner, at, at.Add(30*time.Second))
		if err != nil {
			t.Fatalf("TryLoop(%s): %v", owner, err)
		}
		return ok
	}
	if !try("a", now) {
		t.Fatal("a free lease was not taken")
	}
	if try("b", now.Add(time.Second)) {
		t.Fatal("b took a lease a holds")
	}
	if !try("a", now.Add(10*time.Second)) {
		t.Fatal("the holder could not renew")
	}
	if try("b", now.Add(35*time.Second)) {
		t.Fatal("b took the lease before the renewed one ran out")
	}
	if !try("b", now.Add(41*time.Second)) {
		t.Fatal("b could not take a lease that ran out")
	}
	if err := store.ReleaseLoop(ctx, "sweep", "a"); err != nil { // not a's any more: nothing happens
		t.Fatal(err)
	}
	if try("a", now.Add(42*time.Second)) {
		t.Fatal("a's release took b's lease away")
	}
	if err := store.ReleaseLoop(ctx, "sweep", "b"); err != nil {
		t.Fatal(err)
	}
	if !try("a", now.Add(43*time.Second)) {
		t.Fatal("a handed-back lease was not free at once")
	}
	// Other loops have leases of their own.
	if ok, err := store.TryLoop(ctx, "reconcile", "b", now, now.Add(time.Minute)); err != nil || !ok {
		t.Fatalf("another loop's lease: %v %v", ok, err)
	}
	page, err := store.Due(ctx, now.Add(100*365*24*time.Hour), "", 100)
	if err != nil || len(page.Tasks) != 0 || len(page.Corrupt) != 0 {
		t.Fatalf("the lease items show in Due: %+v %v", page, err)
	}
}
