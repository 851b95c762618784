package approvals

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Record appends rec to the task's audit trail, chained to the record
// before it. It is the one way records are added.
func (t *Task) Record(rec AuditRecord) {
	rec.At = rec.At.UTC()
	rec.Prev = ""
	if n := len(t.Audit); n > 0 {
		rec.Prev = t.Audit[n-1].Hash
	}
	rec.Hash = AuditHash(rec)
	t.Audit = append(t.Audit, rec)
}

// AuditHash is a record's hash: hex SHA-256 of its Prev followed by its
// canonical JSON without Hash. The canonical JSON is the record's fields in
// the order at, user, userName, event, detail, prev (empty ones left out),
// at in RFC 3339 with nanoseconds, UTC.
func AuditHash(rec AuditRecord) string {
	rec.Hash = ""
	canonical, err := json.Marshal(rec)
	if err != nil {
		// A struct of strings and a time: it always marshals.
		panic(fmt.Sprintf("approvals: audit record: %v", err))
	}
	sum := sha256.Sum256(append([]byte(rec.Prev), canonical...))
	return hex.EncodeToString(sum[:])
}

// VerifyAudit checks a trail's chain and says where it breaks.
func VerifyAudit(trail []AuditRecord) error {
	prev := ""
	for i, rec := range trail {
		if rec.Prev != prev {
			return fmt.Errorf("audit record %d (%s): prev does not name the record before it", i, rec.Event)
		}
		if got := AuditHash(rec); got != rec.Hash {
			return fmt.Errorf("audit record %d (%s): its hash does not match its content", i, rec.Event)
		}
		prev = rec.Hash
	}
	return nil
}
