package identity

import "testing"

func TestFold(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ a, b string }{
		{"Alice", "alice"},
		{"Ａｌｉｃｅ", "alice"},                            // full-width
		{"straße", "STRASSE"},                         // ß folds to ss
		{"ﬁnance@example.com", "FINANCE@example.com"}, // the ﬁ ligature
		{"Dev@Example.COM", "dev@example.com"},
		{"é", "e\u0301"}, // composed and decomposed
	} {
		if Fold(tc.a) != Fold(tc.b) {
			t.Errorf("Fold(%q) = %q, Fold(%q) = %q: want equal", tc.a, Fold(tc.a), tc.b, Fold(tc.b))
		}
	}
	if Fold("alice") == Fold("alicia") {
		t.Error("different names fold alike")
	}
}
