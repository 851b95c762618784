package rest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		s       string
		secrets []string
		want    string
	}{
		{name: "every copy", s: "a s3cr3t b s3cr3t", secrets: []string{"s3cr3t"}, want: "a [redacted] b [redacted]"},
		{name: "each form", s: "p=a%2Fb q=a/b", secrets: []string{"a/b", "a%2Fb"}, want: "p=[redacted] q=[redacted]"},
		{name: "empty secrets skipped", s: "text", secrets: []string{"", ""}, want: "text"},
		{name: "no secrets", s: "text", want: "text"},
		{name: "in the order given", s: "Basic QUJD", secrets: []string{"Basic QUJD", "QUJD"}, want: "[redacted]"},
	}
	for _, tc := range tests {
		if got := Redact(tc.s, tc.secrets...); got != tc.want {
			t.Errorf("%s: Redact = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestRedactError(t *testing.T) {
	t.Parallel()
	err := RedactError(fmt.Errorf("Post https://h/x?token=s3cr3t: %w", context.DeadlineExceeded), "s3cr3t")
	if got := err.Error(); strings.Contains(got, "s3cr3t") || !strings.Contains(got, "token=[redacted]") {
		t.Errorf("Error() = %q", got)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("the wrapped error is no longer seen")
	}
	if RedactError(nil, "s3cr3t") != nil {
		t.Error("RedactError(nil) is not nil")
	}
}

func TestExcerpt(t *testing.T) {
	t.Parallel()
	// A secret may hold a space, as an Authorization value does.
	const secret = "Basic tok3n"
	redact := func(s string) string { return Redact(s, secret) }
	tests := []struct {
		name, text, want string
	}{
		{name: "plain", text: "Task is not pending\n", want: "Task is not pending"},
		{name: "on one line", text: "<html>\n<body>Not   Found</body>\r\n\t</html>", want: "<html> <body>Not Found</body> </html>"},
		{name: "control characters", text: "a\x00b\x1bc", want: "a b c"},
		{name: "invalid UTF-8", text: "bad \xff byte", want: "bad \uFFFD byte"},
		{name: "secret", text: "denied Basic tok3n", want: "denied [redacted]"},
		{name: "secret on its own line", text: "denied\nBasic tok3n\n", want: "denied [redacted]"},
		{name: "secret whole once joined", text: "denied Basic\r\n  tok3n", want: "denied [redacted]"},
		{name: "long", text: strings.Repeat("é", 500), want: strings.Repeat("é", 199) + "…"},
		{name: "just fits", text: strings.Repeat("a", 199), want: strings.Repeat("a", 199)},
		{name: "the mark counts", text: strings.Repeat("a", 200), want: strings.Repeat("a", 199) + "…"},
		{name: "empty", text: " \n ", want: ""},
	}
	for _, tc := range tests {
		got := Excerpt(tc.text, redact)
		if got != tc.want {
			t.Errorf("%s: Excerpt = %q\nwant            %q", tc.name, got, tc.want)
		}
		if utf8.RuneCountInString(got) > ExcerptRunes || strings.Contains(got, secret) {
			t.Errorf("%s: Excerpt = %q is too long or holds the secret", tc.name, got)
		}
	}
}
