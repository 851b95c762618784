package attestation

import (
	"fmt"

	"github.com/approvalbot/approvalbot/approvals"
)

// decodeStrict decodes data into v and refuses anything approvalbot does
// not write: a member name given twice, a member v does not have (or one
// in another case), invalid UTF-8, and anything after the one JSON value.
// encoding/json would take the last of two duplicates, fold case and skip
// unknown members, so that bytes could change without the verifier seeing
// it. The reading is approvals.DecodeStrict's, the receipts' own.
func decodeStrict(data []byte, v any) error {
	if err := approvals.DecodeStrict(data, v); err != nil {
		return fmt.Errorf("not exactly the JSON approvalbot writes: %v", err)
	}
	return nil
}
