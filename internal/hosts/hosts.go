// Package hosts holds the allowed-host lists that keep a bearer credential
// (a job token, a signed decision) from being sent anywhere else: whoever
// may submit a task names the URL it goes back to, so only a host the
// operator listed passes. One owner, so that every adapter reads a pattern
// the same way.
package hosts

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"strings"
)

// List is the host patterns a URL may name, trimmed and in lower case.
type List []string

// New returns the non-empty patterns, trimmed and in lower case. Check them
// with Validate first: New drops what is empty but accepts anything else.
func New(patterns []string) List {
	out := make(List, 0, len(patterns))
	for _, p := range patterns {
		if p = strings.ToLower(strings.TrimSpace(p)); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Allows reports whether u's host matches a pattern. A pattern without a
// port, such as "*.visualstudio.com", is a glob (path.Match syntax) over
// the host name, whatever the port. A pattern with a port, such as
// "tfs.internal:8443", matches that port only, the scheme's default (https
// 443, http 80) counting when u names none: "dev.azure.com:443" matches
// https://dev.azure.com/. An IPv6 address, such as "::1", is a host name;
// "[::1]:8080" pins its port.
func (l List) Allows(u *url.URL) bool {
	host, port := strings.ToLower(u.Hostname()), defaultPort(u)
	for _, p := range l {
		ph, pp, pinned := split(p)
		if pinned {
			if matches(ph, host) && matches(pp, port) {
				return true
			}
			continue
		}
		if matches(p, host) {
			return true
		}
	}
	return false
}

// split cuts a pattern into host and port; pinned is false for a pattern
// that names no port (an IPv6 address has colons but no port unless
// bracketed). Allows and Validate read a pattern through it alike.
func split(p string) (host, port string, pinned bool) {
	if !strings.Contains(p, ":") {
		return p, "", false
	}
	h, pt, err := net.SplitHostPort(p)
	if err != nil {
		return p, "", false
	}
	return h, pt, true
}

func matches(pattern, name string) bool {
	ok, _ := path.Match(pattern, name)
	return ok
}

// Validate checks patterns for the configuration and reports every problem
// at once, each naming its pattern, what (such as "webhook") leading each
// message. A pattern is a host name or glob, optionally with :port; a
// scheme, path or credentials mean someone wrote a URL, which would match
// nothing, so they are refused rather than left to fail at intake.
func Validate(patterns []string, what string) error {
	var errs []error
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		if p == "" {
			errs = append(errs, fmt.Errorf("%s: an allowed host is empty", what))
			continue
		}
		if strings.ContainsAny(p, `/\@`) {
			errs = append(errs, fmt.Errorf("%s: allowed host %s is not a host name or glob (such as *.example.com or ci.example.com:8443): it must not hold a scheme, path or credentials", what, p))
			continue
		}
		host, port, pinned := split(p)
		if pinned && (host == "" || port == "") {
			errs = append(errs, fmt.Errorf("%s: allowed host %s has an empty host or port", what, p))
			continue
		}
		if !validGlob(host) || !validGlob(port) {
			errs = append(errs, fmt.Errorf("%s: allowed host %s is not a valid glob pattern", what, p))
		}
	}
	return errors.Join(errs...)
}

func validGlob(p string) bool {
	_, err := path.Match(p, "")
	return err == nil
}

// IsLoopback reports whether host (a URL's Hostname) is this machine:
// localhost, or a loopback address. A name merely starting with "127." is
// not: it may resolve anywhere.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ValidName accepts DNS names and IP addresses (a URL's Hostname): letters,
// digits, '.', '-' and, for IPv6, ':'. Anything else (percent-escapes, '*',
// '[') could make a glob match a host it was not meant for.
func ValidName(host string) bool {
	if host == "" || len(host) > 253 {
		return false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':') {
			return false
		}
	}
	return true
}

// HostPort is u's host with its port, the scheme's default when u names
// none: the same server whether or not its URL spells the port out.
func HostPort(u *url.URL) string {
	return net.JoinHostPort(u.Hostname(), defaultPort(u))
}

// defaultPort is u's port, or its scheme's default (empty for a scheme
// other than http and https).
func defaultPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}
