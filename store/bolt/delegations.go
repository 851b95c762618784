package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	bbolt "go.etcd.io/bbolt"

	"github.com/approvalbot/approvalbot/approvals"
)

// The delegations are one record, "all" in the delegations bucket: the JSON
// array of approvals.Delegation. One record keeps a change and the checks
// that go with it (no chains) in one transaction.
const bucketDelegations = "delegations"

var delegationsKey = []byte("all")

var _ approvals.DelegationStore = (*Store)(nil)

// Delegations returns every stored delegation.
func (s *Store) Delegations(ctx context.Context) ([]approvals.Delegation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []approvals.Delegation
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		out, err = readDelegations(tx)
		return err
	})
	if err != nil {
		return nil, storeError("read delegations", err)
	}
	return out, nil
}

// UpdateDelegations applies fn to the delegations in one transaction of
// the group commit.
func (s *Store) UpdateDelegations(ctx context.Context, fn func([]approvals.Delegation) ([]approvals.Delegation, error)) ([]approvals.Delegation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []approvals.Delegation
	var fnErr, failed error
	err := s.write(ctx, func(tx *bbolt.Tx) error {
		out, fnErr, failed = nil, nil, nil
		cur, err := readDelegations(tx)
		if err != nil {
			failed = err
			return nil
		}
		next, err := fn(slices.Clone(cur))
		if err != nil {
			fnErr = err
			return nil
		}
		data, err := json.Marshal(next)
		if err != nil {
			failed = fmt.Errorf("%w: delegations: %w", approvals.ErrInvalid, err)
			return nil
		}
		if err := tx.Bucket([]byte(bucketDelegations)).Put(delegationsKey, data); err != nil {
			return err
		}
		out = next
		return nil
	})
	switch {
	case fnErr != nil:
		return nil, fnErr
	case err == nil && failed != nil:
		err = failed
	}
	if err != nil {
		return nil, storeError("update delegations", err)
	}
	return out, nil
}

func readDelegations(tx *bbolt.Tx) ([]approvals.Delegation, error) {
	data := tx.Bucket([]byte(bucketDelegations)).Get(delegationsKey)
	if data == nil {
		return nil, nil
	}
	var out []approvals.Delegation
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, &approvals.CorruptError{Key: bucketDelegations, Err: err}
	}
	return out, nil
}
