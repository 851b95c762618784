// Package docscheck checks the relative links of Markdown pages: every
// link to a file of the repository names one that exists, and every link to
// a heading of a Markdown page (`page.md#anchor`, or `#anchor` within the
// page) names a heading that page has, by GitHub's anchor rules. Links with
// a scheme (https:, mailto:) are not followed. It exists so that the README
// and docs/ can be split and moved without a reader meeting a dead link.
package docscheck

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Problem is one broken link.
type Problem struct {
	File   string // the page, as given to Check
	Line   int    // 1-based line of the link
	Target string // the link as written
	Why    string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Target, p.Why)
}

var (
	// inlineLink is [text](target "title") and ![alt](target); the text may
	// span lines and hold one level of brackets ([![badge](a)](b)).
	inlineLink = regexp.MustCompile(`!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>\n]*>|[^)\s]+)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)`)
	// refDef is a reference definition: [label]: target
	refDef = regexp.MustCompile(`(?m)^ {0,3}\[[^\]\n]+\]:\s*(<[^>\n]*>|\S+)`)
	// codeSpan is inline code, whose brackets are not links.
	codeSpan = regexp.MustCompile("(`+)[^`]*?(`+)")
	// scheme is a link that leaves the repository.
	scheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
	// htmlAnchor is an anchor written in HTML: <a name="x"> or id="x".
	htmlAnchor = regexp.MustCompile(`<[^>]+\b(?:name|id)="([^"]+)"`)
	// atxHeading is "## Title ##".
	atxHeading = regexp.MustCompile(`^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$`)
)

// Check reads each page (a path relative to root) and returns every broken
// relative link in them, in the order of the pages and their lines.
func Check(root string, pages []string) ([]Problem, error) {
	anchors := map[string]map[string]bool{} // cleaned path → anchors
	anchorsOf := func(path string) (map[string]bool, error) {
		if a, ok := anchors[path]; ok {
			return a, nil
		}
		data, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			return nil, err
		}
		a := Anchors(string(data))
		anchors[path] = a
		return a, nil
	}
	var problems []Problem
	for _, page := range pages {
		data, err := os.ReadFile(filepath.Join(root, page))
		if err != nil {
			return nil, err
		}
		for _, l := range Links(string(data)) {
			p := Problem{File: page, Line: l.Line, Target: l.Target}
			target := strings.Trim(l.Target, "<>")
			if target == "" {
				p.Why = "empty link"
				problems = append(problems, p)
				continue
			}
			if scheme.MatchString(target) || strings.HasPrefix(target, "//") {
				continue
			}
			path, anchor, hasAnchor := strings.Cut(target, "#")
			if i := strings.IndexByte(path, '?'); i >= 0 {
				path = path[:i]
			}
			if strings.HasPrefix(path, "/") {
				p.Why = "a link from the repository's root works on GitHub's site only; write it relative to the page"
				problems = append(problems, p)
				continue
			}
			if unescaped, err := url.PathUnescape(path); err == nil {
				path = unescaped
			}
			resolved := filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(page), path)))
			if path == "" {
				resolved = filepath.ToSlash(filepath.Clean(page))
			}
			if resolved == ".." || strings.HasPrefix(resolved, "../") {
				p.Why = "points outside the repository"
				problems = append(problems, p)
				continue
			}
			info, err := os.Stat(filepath.Join(root, resolved))
			if err != nil {
				p.Why = "no such file: " + resolved
				problems = append(problems, p)
				continue
			}
			if !hasAnchor || info.IsDir() || !strings.EqualFold(filepath.Ext(resolved), ".md") {
				continue
			}
			a, err := anchorsOf(resolved)
			if err != nil {
				return nil, err
			}
			if !a[strings.ToLower(anchor)] {
				p.Why = fmt.Sprintf("%s has no heading with the anchor #%s", resolved, anchor)
				problems = append(problems, p)
			}
		}
	}
	return problems, nil
}

// Link is one link of a page.
type Link struct {
	Line   int
	Target string
}

// Links returns the links of a Markdown page, outside fenced code blocks
// and inline code.
func Links(doc string) []Link {
	text := blankCode(doc)
	var links []Link
	for _, re := range []*regexp.Regexp{inlineLink, refDef} {
		for _, m := range re.FindAllStringSubmatchIndex(text, -1) {
			target := text[m[2]:m[3]]
			links = append(links, Link{Line: 1 + strings.Count(text[:m[0]], "\n"), Target: target})
		}
	}
	return links
}

// blankCode replaces fenced code blocks and code spans with spaces, keeping
// every line where it was.
func blankCode(doc string) string {
	lines := strings.Split(doc, "\n")
	var fence string
	for i, line := range lines {
		trimmed := strings.TrimLeft(line, " ")
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]+" \t") == "" {
				fence = ""
			}
			lines[i] = ""
			continue
		}
		if len(line)-len(trimmed) <= 3 && (strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~")) {
			n := len(trimmed) - len(strings.TrimLeft(trimmed, trimmed[:1]))
			fence = strings.Repeat(trimmed[:1], n)
			lines[i] = ""
			continue
		}
		lines[i] = codeSpan.ReplaceAllStringFunc(line, func(s string) string { return strings.Repeat("x", len(s)) })
	}
	return strings.Join(lines, "\n")
}

// Anchors returns the anchors of a Markdown page's headings by GitHub's
// rules (see Slug), with -1, -2 … for repeats, and the anchors written in
// HTML (<a name="…">).
func Anchors(doc string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	var fence string
	for _, line := range strings.Split(doc, "\n") {
		trimmed := strings.TrimLeft(line, " ")
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]+" \t") == "" {
				fence = ""
			}
			continue
		}
		if len(line)-len(trimmed) <= 3 && (strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~")) {
			n := len(trimmed) - len(strings.TrimLeft(trimmed, trimmed[:1]))
			fence = strings.Repeat(trimmed[:1], n)
			continue
		}
		for _, m := range htmlAnchor.FindAllStringSubmatch(line, -1) {
			anchors[strings.ToLower(m[1])] = true
		}
		m := atxHeading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		slug := Slug(m[2])
		anchor := slug
		if n := seen[slug]; n > 0 {
			anchor = slug + "-" + strconv.Itoa(n)
		}
		seen[slug]++
		anchors[anchor] = true
	}
	return anchors
}

var (
	mdLink  = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	htmlTag = regexp.MustCompile(`<[^>]*>`)
)

// Slug is the anchor GitHub gives a heading: its text as rendered (link
// text kept, markup and HTML tags dropped), lower-cased, every character
// but letters, digits, spaces, hyphens and underscores removed, and each
// space made a hyphen. "Receipts: proving who decided, offline" is
// receipts-proving-who-decided-offline; "A — B" is a--b.
func Slug(heading string) string {
	text := mdLink.ReplaceAllString(heading, "$1")
	text = htmlTag.ReplaceAllString(text, "")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
