package hosts

import (
	"net/url"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	t.Parallel()
	got := New([]string{" Dev.Azure.COM ", "", "  ", "*.VisualStudio.com"})
	if strings.Join(got, ",") != "dev.azure.com,*.visualstudio.com" {
		t.Errorf("New = %q", got)
	}
	if got := New(nil); got == nil || len(got) != 0 {
		t.Errorf("New(nil) = %#v, want an empty list", got)
	}
}

func TestAllows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		patterns []string
		url      string
		want     bool
	}{
		{"exact name", []string{"dev.azure.com"}, "https://dev.azure.com/contoso/", true},
		{"name, any port", []string{"dev.azure.com"}, "https://dev.azure.com:8443/", true},
		{"glob", []string{"*.visualstudio.com"}, "https://contoso.visualstudio.com/", true},
		{"glob needs a label", []string{"*.visualstudio.com"}, "https://visualstudio.com/", false},
		{"glob, label with dots", []string{"*.visualstudio.com"}, "https://a.b.visualstudio.com/", true},
		{"host in upper case", []string{"dev.azure.com"}, "https://DEV.Azure.COM/", true},
		{"pattern in upper case", []string{"DEV.azure.com"}, "https://dev.azure.com/", true},
		{"longer host, prefix", []string{"dev.azure.com"}, "https://evil-dev.azure.com/", false},
		{"longer host, suffix", []string{"dev.azure.com"}, "https://dev.azure.com.evil.com/", false},
		{"longer host, glob", []string{"*.visualstudio.com"}, "https://x.visualstudio.com.evil.com/", false},
		{"trailing dot", []string{"dev.azure.com"}, "https://dev.azure.com./", false},
		{"in the path only", []string{"dev.azure.com"}, "https://evil.example.com/dev.azure.com/", false},
		{"pinned port, given", []string{"tfs.internal:8443"}, "https://tfs.internal:8443/tfs/", true},
		{"pinned port, other", []string{"tfs.internal:8443"}, "https://tfs.internal:9443/tfs/", false},
		{"pinned port, none given", []string{"tfs.internal:8443"}, "https://tfs.internal/tfs/", false},
		{"pinned https default, none given", []string{"dev.azure.com:443"}, "https://dev.azure.com/", true},
		{"pinned https default, given", []string{"dev.azure.com:443"}, "https://dev.azure.com:443/", true},
		{"pinned https default, http", []string{"dev.azure.com:443"}, "http://dev.azure.com/", false},
		{"pinned http default, none given", []string{"127.0.0.1:80"}, "http://127.0.0.1/", true},
		{"pinned port, longer host", []string{"dev.azure.com:443"}, "https://evil-dev.azure.com/", false},
		{"pinned port, glob", []string{"*.example.com:8443"}, "https://ci.example.com:8443/", true},
		{"pinned port, glob, other port", []string{"*.example.com:8443"}, "https://ci.example.com/", false},
		{"pinned port, host in upper case", []string{"ci.example.com:8443"}, "https://CI.Example.com:8443/", true},
		{"ipv6 address, any port", []string{"::1"}, "http://[::1]:8080/", true},
		{"ipv6 address, pinned", []string{"[::1]:8080"}, "http://[::1]:8080/", true},
		{"ipv6 address, pinned, other port", []string{"[::1]:8080"}, "http://[::1]:9090/", false},
		{"second pattern", []string{"dev.azure.com", "tfs.internal"}, "https://tfs.internal/", true},
		{"empty list", nil, "https://dev.azure.com/", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if got := New(tc.patterns).Allows(u); got != tc.want {
				t.Errorf("%q allows %s = %v, want %v", tc.patterns, tc.url, got, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	if err := Validate(nil, "webhook"); err != nil {
		t.Errorf("nil: %v", err)
	}
	good := []string{"dev.azure.com", "*.visualstudio.com", " ci.example.com:8443 ", "127.0.0.1", "::1", "[::1]:8080", "*.example.com:*"}
	if err := Validate(good, "webhook"); err != nil {
		t.Errorf("good patterns: %v", err)
	}
	bad := []string{"ok.example.com", "", "[bad", "https://evil.example", `evil\host`, "user@host", "host:", ":443", "host:[x"}
	err := Validate(bad, "azure devops")
	if err == nil {
		t.Fatal("Validate succeeded, want every problem")
	}
	msg := err.Error()
	for _, want := range []string{
		"azure devops: an allowed host is empty",
		"azure devops: allowed host [bad is not a valid glob pattern",
		"azure devops: allowed host https://evil.example is not a host name or glob",
		`azure devops: allowed host evil\host is not a host name or glob`,
		"azure devops: allowed host user@host is not a host name or glob",
		"azure devops: allowed host host: has an empty host or port",
		"azure devops: allowed host :443 has an empty host or port",
		"azure devops: allowed host host:[x is not a valid glob pattern",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "ok.example.com") {
		t.Errorf("error names a good pattern:\n%s", msg)
	}
	if n := strings.Count(msg, "\n") + 1; n != len(bad)-1 {
		t.Errorf("%d problems, want %d:\n%s", n, len(bad)-1, msg)
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"localhost":       true,
		"LocalHost":       true,
		"127.0.0.1":       true,
		"127.1.2.3":       true,
		"::1":             true,
		"0:0:0:0:0:0:0:1": true,
		"127.evil.com":    false,
		"localhost.evil":  false,
		"10.0.0.1":        false,
		"::":              false,
		"dev.azure.com":   false,
		"":                false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestValidName(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"dev.azure.com":          true,
		"DEV.Azure.com":          true,
		"tfs-01.corp.example":    true,
		"127.0.0.1":              true,
		"::1":                    true,
		"":                       false,
		"*.azure.com":            false,
		"dev%2eazure.com":        false,
		"[::1]":                  false,
		"dev_azure.com":          false,
		"dév.azure.com":          false,
		strings.Repeat("a", 253): true,
		strings.Repeat("a", 254): false,
	} {
		if got := ValidName(host); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestHostPort(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"https://dev.azure.com/":      "dev.azure.com:443",
		"http://dev.azure.com/":       "dev.azure.com:80",
		"https://dev.azure.com:8443/": "dev.azure.com:8443",
		"http://[::1]/":               "[::1]:80",
		"http://[::1]:8080/":          "[::1]:8080",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := HostPort(u); got != want {
			t.Errorf("HostPort(%s) = %q, want %q", raw, got, want)
		}
	}
}

// Whatever URL comes in, a list allows only the hosts it names.
func FuzzAllows(f *testing.F) {
	for _, s := range []string{"https://dev.azure.com/", "https://tfs.internal:8443/", "https://tfs.internal/", "http://[::1]:8443/", "https://DEV.azure.com:1/", "https://dev.azure.com.evil/"} {
		f.Add(s)
	}
	l := New([]string{"dev.azure.com", "tfs.internal:8443"})
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil || !l.Allows(u) {
			return
		}
		switch host := strings.ToLower(u.Hostname()); {
		case host == "dev.azure.com":
		case host == "tfs.internal" && u.Port() == "8443":
		default:
			t.Fatalf("%q allows %s (host %q, port %q)", l, raw, u.Hostname(), u.Port())
		}
	})
}
