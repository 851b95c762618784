// Package identity normalises the names and emails people are known by
// before they are compared, so that "Ａｌｉｃｅ" and "alice", or "ß" and "SS",
// name the same person. It uses golang.org/x/text rather than hand-written
// tables: Unicode's compatibility and case-folding data are large and change
// with each Unicode version.
package identity

import (
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Fold is NFKC case folding: compatibility characters decomposed (full-width
// letters, ligatures), case folded, and composed again.
func Fold(s string) string {
	return norm.NFKC.String(cases.Fold().String(norm.NFKC.String(s)))
}
