package storetest

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

// cloneTask returns a deep copy, so that a fixture stays as it was whatever a
// store does with what it is given.
func cloneTask(t *approvals.Task) *approvals.Task {
	c := *t
	c.Approvals = slices.Clone(t.Approvals)
	c.Audit = slices.Clone(t.Audit)
	c.Outbox = slices.Clone(t.Outbox)
	c.TokenHash = slices.Clone(t.TokenHash)
	c.Nonce = slices.Clone(t.Nonce)
	c.Secret = slices.Clone(t.Secret)
	c.Extra = maps.Clone(t.Extra)
	if t.DecidedBy != nil {
		p := *t.DecidedBy
		c.DecidedBy = &p
	}
	if t.DecidedAt != nil {
		at := *t.DecidedAt
		c.DecidedAt = &at
	}
	if t.Delivery.DeliveredAt != nil {
		at := *t.Delivery.DeliveredAt
		c.Delivery.DeliveredAt = &at
	}
	return &c
}

// normalise makes equal tasks deeply equal: times in UTC without a monotonic
// reading (time.Equal semantics), empty slices and maps as nil.
func normalise(t *approvals.Task) *approvals.Task {
	c := cloneTask(t)
	utc := func(at time.Time) time.Time { return at.Round(0).UTC() }
	for i := range c.Approvals {
		c.Approvals[i].At = utc(c.Approvals[i].At)
	}
	for i := range c.Audit {
		c.Audit[i].At = utc(c.Audit[i].At)
	}
	for i := range c.Outbox {
		c.Outbox[i].NotBefore = utc(c.Outbox[i].NotBefore)
	}
	if c.DecidedAt != nil {
		*c.DecidedAt = utc(*c.DecidedAt)
	}
	if c.Delivery.DeliveredAt != nil {
		*c.Delivery.DeliveredAt = utc(*c.Delivery.DeliveredAt)
	}
	c.CreatedAt = utc(c.CreatedAt)
	c.ExpiresAt = utc(c.ExpiresAt)
	c.Lease.Until = utc(c.Lease.Until)
	if len(c.Approvals) == 0 {
		c.Approvals = nil
	}
	if len(c.Audit) == 0 {
		c.Audit = nil
	}
	if len(c.Outbox) == 0 {
		c.Outbox = nil
	}
	if len(c.TokenHash) == 0 {
		c.TokenHash = nil
	}
	if len(c.Nonce) == 0 {
		c.Nonce = nil
	}
	if len(c.Secret) == 0 {
		c.Secret = nil
	}
	if len(c.Extra) == 0 {
		c.Extra = nil
	}
	return c
}

// diffTask returns "" when the tasks are equal, else both in JSON.
func diffTask(want, got *approvals.Task) string {
	if got == nil {
		return "got nil task"
	}
	w, g := normalise(want), normalise(got)
	if reflect.DeepEqual(w, g) {
		return ""
	}
	wj, _ := json.Marshal(w)
	gj, _ := json.Marshal(g)
	return "want " + string(wj) + "\n got " + string(gj)
}
