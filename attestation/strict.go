package attestation

import (
	"fmt"

	jsonv2 "github.com/go-json-experiment/json"
)

// decodeStrict decodes data into v and refuses anything approvalbot does
// not write: a member name given twice, a member v does not have (names
// match case-sensitively), invalid UTF-8, and anything after the one JSON
// value. encoding/json would take the last of two duplicates, fold case
// and skip unknown members, so that bytes could change without the
// verifier seeing it.
//
// It has the shape of a shared strict-JSON helper (data in, value out,
// one error) so that it can be swapped for one when the receipts' lands.
func decodeStrict(data []byte, v any) error {
	if err := jsonv2.Unmarshal(data, v, jsonv2.RejectUnknownMembers(true)); err != nil {
		return fmt.Errorf("not exactly the JSON approvalbot writes: %v", err)
	}
	return nil
}
