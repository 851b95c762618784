package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// secretWords mark a key that holds a secret: a key whose own name contains
// one (bot_token, signing_secret, password, encryption_key, key, secret, and
// any such key added later) is never quoted in an error and is checked for
// placeholders.
var secretWords = []string{"secret", "token", "password", "passwd", "key"}

// isSecretName reports whether a key's own name (one segment of a path,
// without an index) marks a secret.
func isSecretName(name string) bool {
	name = strings.ToLower(name)
	return slices.ContainsFunc(secretWords, func(w string) bool { return strings.Contains(name, w) })
}

// secretPath reports whether a key path names a secret or something that
// holds secrets: slack.bot_token, intake.api_keys[0] (an entry with a key
// in it), tokens.signing_keys.
func secretPath(path string) bool {
	for _, seg := range strings.Split(path, ".") {
		if i := strings.IndexByte(seg, '['); i >= 0 {
			seg = seg[:i]
		}
		if isSecretName(seg) {
			return true
		}
	}
	return false
}

// secretField is one secret value of a Config and the key it is at.
type secretField struct {
	key, value string
}

// secretFields lists every non-empty secret value of c: each text field
// (or item of a text list) whose key's own name marks a secret, at any
// depth, with its key path as the docs write it (intake.api_keys[0].key).
func secretFields(c *Config) []secretField {
	var out []secretField
	var walk func(v reflect.Value, path string, secret bool)
	walk = func(v reflect.Value, path string, secret bool) {
		switch v.Kind() {
		case reflect.Struct:
			t := v.Type()
			for i := range t.NumField() {
				tag := t.Field(i).Tag.Get("mapstructure")
				walk(v.Field(i), joinPath(path, tag), isSecretName(tag))
			}
		case reflect.Slice:
			for i := range v.Len() {
				// A list of secrets (a future api_tokens: [...]) is secret
				// item by item; a list of entries is judged by their keys.
				walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i), secret && v.Type().Elem().Kind() == reflect.String)
			}
		case reflect.Map:
			if secret {
				for _, k := range v.MapKeys() {
					walk(v.MapIndex(k), joinPath(path, fmt.Sprint(k.Interface())), true)
				}
			}
		case reflect.String:
			if secret && v.String() != "" {
				out = append(out, secretField{key: path, value: v.String()})
			}
		}
	}
	walk(reflect.ValueOf(*c), "", false)
	return out
}

// minRedacted is the shortest secret value redact removes from a message:
// a shorter one would garble ordinary words, and is refused anyway.
const minRedacted = 4

// redact replaces every secret value in msg with "[redacted]". Messages are
// written so as never to quote a secret; this is the backstop for a message
// that would, now or after a change.
func redact(msg string, secrets []string) string {
	secrets = slices.Clone(secrets)
	// Longest first, so that a secret containing another goes whole.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		if len(s) >= minRedacted {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}

// values returns the secret values of fields.
func values(fields []secretField) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.value
	}
	return out
}

// holdsSecret reports whether the key at path, whose own name is name,
// holds secret text: its name marks a secret and Config has text there (or
// has no such key: a misspelt bot_tokn is treated as what it was meant to
// be). The tokens section and the api_keys list are not secrets
// themselves; the key and secret inside them are.
func holdsSecret(path, name string) bool {
	if !isSecretName(name) {
		return false
	}
	t, ok := typeAt(path)
	return !ok || t.Kind() == reflect.String || t == stringSliceType
}

// yamlSecrets collects from a parsed file every scalar (keys included) at
// or under a key that holds secret text, whatever its shape: a mistaken
// bot_token: [xoxb-…] holds the token in a list.
func yamlSecrets(n *yaml.Node) []string {
	var out []string
	var walk func(n *yaml.Node, path string, secret bool)
	walk = func(n *yaml.Node, path string, secret bool) {
		if n == nil {
			return
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path, secret)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i), secret)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if secret {
					walk(k, path, true)
					walk(v, path, true)
					continue
				}
				p := joinPath(path, strings.ToLower(k.Value))
				walk(v, p, k.Kind == yaml.ScalarNode && holdsSecret(p, k.Value))
			}
		case yaml.ScalarNode:
			if n.Value == "" {
				return
			}
			// Text where a section or list of secrets belongs (signing_keys:
			// "k1:…", api_keys: [key]) may be a secret too.
			t, known := typeAt(path)
			misplaced := secretPath(path) && (!known || t.Kind() == reflect.Struct || t.Kind() == reflect.Slice || t.Kind() == reflect.Map)
			if secret || misplaced {
				out = append(out, n.Value)
			}
		case yaml.AliasNode:
			// The anchor's value is collected where it is defined; its
			// name may be a mistaken secret (password: *abc…).
			if secret && n.Value != "" {
				out = append(out, n.Value)
			}
		}
	}
	walk(n, "", false)
	return out
}

// placeholderMarkers are text that template and example values carry and
// real secrets (random, or at least chosen) do not: REPLACE-ME, change-me,
// "xoxb-…", an example config's secret.
var placeholderMarkers = []string{"replace", "change-me", "changeme", "change_me", "example", "placeholder", "…", "..."}

// placeholderWords are whole values that are no secret.
var placeholderWords = []string{"secret", "password", "token", "changeit", "todo", "tbd"}

// templateVar is a value like "<bot token>" or "xoxb-<token>".
var templateVar = regexp.MustCompile(`<[A-Za-z0-9 _.-]+>`)

// slackPrefixes start Slack's tokens; what follows them in a template is
// filler.
var slackPrefixes = []string{"xoxb-", "xoxp-", "xapp-", "xoxe-", "xoxa-"}

// looksLikePlaceholder reports whether a secret value is template text
// rather than a secret. It errs towards silence: a real secret must never
// be called a placeholder, so only text no generated secret contains
// counts.
func looksLikePlaceholder(v string) bool {
	lower := strings.ToLower(strings.TrimSpace(v))
	if slices.ContainsFunc(placeholderMarkers, func(m string) bool { return strings.Contains(lower, m) }) ||
		slices.Contains(placeholderWords, lower) || templateVar.MatchString(v) {
		return true
	}
	// Nothing but filler, after a Slack prefix or alone: "xoxb-",
	// "xoxb-xxxx-xxxx", "********", "0000".
	rest := lower
	for _, p := range slackPrefixes {
		rest = strings.TrimPrefix(rest, p)
	}
	return strings.Trim(rest, "x*.-_0 ") == ""
}

// placeholderWarnings names every secret whose value looks like a
// placeholder; the value itself is never shown.
func (c *Config) placeholderWarnings() []string {
	var w []string
	for _, f := range secretFields(c) {
		if looksLikePlaceholder(f.value) {
			w = append(w, f.key+": looks like a placeholder, not a real secret: set the real one before production")
		}
	}
	return w
}
