package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

const (
	// EnvPrefix starts every environment variable that sets a key.
	EnvPrefix = "APPROVALBOT"
	// EnvConfigPath names the config file when --config is not given.
	EnvConfigPath = "APPROVALBOT_CONFIG"
	// DefaultPath is used when it exists and nothing else names a file.
	DefaultPath = "approvalbot.yaml"

	// The lists that can come from the environment, as "a:b,c:d".
	envAPIKeys     = "APPROVALBOT_INTAKE_API_KEYS"
	envSigningKeys = "APPROVALBOT_TOKENS_SIGNING_KEYS"
)

// ResolvePath says which config file to load: the flag's value if set, else
// $APPROVALBOT_CONFIG, else ./approvalbot.yaml if it exists, else "" (defaults
// and environment only).
func ResolvePath(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if p := os.Getenv(EnvConfigPath); p != "" {
		return p
	}
	if fi, err := os.Stat(DefaultPath); err == nil && fi.Mode().IsRegular() {
		return "./" + DefaultPath
	}
	return ""
}

// Load reads the configuration: defaults, then the YAML file at path (if path
// is not ""), then the environment. A file that is missing, unparsable or has
// keys Config does not know is an error naming the file. Load does not
// validate; call Validate.
func Load(path string) (*Config, error) {
	var data []byte
	if path != "" {
		var err error
		data, err = readFile(path)
		if err != nil {
			return nil, err
		}
	}
	return loadBytes(path, data)
}

// readFile reads the config file; its error names the file once.
func readFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	return data, nil
}

// loadBytes builds the configuration from defaults, the content data of the
// file at path (none when path is "") and the environment. Its errors name
// keys and say what is wrong with them, but never quote a secret's value.
func loadBytes(path string, data []byte) (*Config, error) {
	var secrets []string
	c, err := load(path, data, &secrets)
	if err != nil {
		// Each message is written not to quote a value; the backstop
		// removes any secret of the file or the environment all the same.
		return nil, errors.New(redact(err.Error(), append(secrets, envSecrets()...)))
	}
	return c, nil
}

// load is loadBytes; it adds to secrets the secret values of the file as
// soon as it has parsed it.
func load(path string, data []byte, secrets *[]string) (*Config, error) {
	v := viper.New()
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	// viper only consults the environment for keys it knows of; binding each
	// scalar key (and giving it its default) makes every one settable from
	// the environment even when the file leaves it out.
	for _, k := range scalarKeys() {
		v.SetDefault(k.path, k.def)
		if err := v.BindEnv(k.path); err != nil {
			return nil, fmt.Errorf("config: bind %s: %w", k.path, err)
		}
	}

	var file map[string]any
	if path != "" {
		var err error
		file, err = parseFile(data, secrets)
		if err != nil {
			return nil, fmt.Errorf("config: parse %s: %w", path, err)
		}
		if err := v.MergeConfigMap(file); err != nil {
			return nil, fmt.Errorf("config: parse %s: %w", path, err)
		}
	}

	var c Config
	err := v.Unmarshal(&c, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		durationNeedsUnit,
		parseDuration,
		commaList,
	)))
	if err != nil {
		where := "environment"
		if path != "" {
			where = path + " and environment"
		}
		return nil, fmt.Errorf("config: decode %s: %w", where, tidyDecodeError(err))
	}

	if err := applyEnvLists(&c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	applyPolicyDefaults(&c, file)
	return &c, nil
}

// parseFile decodes YAML into viper's shape (lower-case keys, string-keyed
// maps, no null values) and rejects keys Config does not know: a typo in an
// approval gate's configuration must not pass silently. It adds the file's
// secret values to secrets.
func parseFile(data []byte, secrets *[]string) (map[string]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlSyntaxError(data, err)
	}
	*secrets = append(*secrets, yamlSecrets(&doc)...)
	var raw map[string]any
	if len(doc.Content) > 0 {
		if err := doc.Decode(&raw); err != nil {
			return nil, locateYAMLError(&doc, err)
		}
	}
	var problems []string
	norm, _ := normalize(raw, "", &problems).(map[string]any)
	if norm == nil {
		norm = map[string]any{}
	}
	unknownKeys(norm, reflect.TypeOf(Config{}), "", &problems)
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return norm, nil
}

// quoted matches what a YAML error quotes: an anchor's name, a value.
// Single characters (did not find expected ',' or '}') stay.
var quoted = regexp.MustCompile("'[^']{2,}'|\"[^\"]{2,}\"|`[^`]+`")

// unknownAnchor is yaml's error for an alias of no anchor.
var unknownAnchor = regexp.MustCompile(`unknown anchor '(.*)' referenced`)

// yamlSyntaxError is a parse error of data with nothing of the file quoted:
// an unquoted value starting with * is read as an alias, and yaml's
// "unknown anchor" error would show the rest of it (password: *S3cret…).
// That one gets the line of the alias instead, which yaml does not give.
func yamlSyntaxError(data []byte, err error) error {
	msg := err.Error()
	if m := unknownAnchor.FindStringSubmatch(msg); m != nil {
		msg = "yaml: unknown anchor referenced: a value that starts with * or & must be quoted"
		for i, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "*"+m[1]) {
				msg = fmt.Sprintf("yaml: line %d: an alias of no anchor: a value that starts with * or & must be quoted", i+1)
				break
			}
		}
	}
	return errors.New(quoted.ReplaceAllString(msg, "(not shown)"))
}

// locateYAMLError explains why a parsed file does not decode, key by key,
// without yaml's messages: they quote the value (cannot decode !!str
// `xoxb-…` as a !!int; invalid map key: []interface {}{"xoxb-…"}).
func locateYAMLError(doc *yaml.Node, err error) error {
	root := doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return errors.New("the file must be a mapping of keys (server:, slack:, …)")
	}
	var problems []string
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.MappingNode:
			seen := map[string]bool{}
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				var key any
				if k.Kind != yaml.ScalarNode || k.Decode(&key) != nil {
					problems = append(problems, fmt.Sprintf("%s: line %d: a key must be a name, not a list or a mapping", orTop(path), k.Line))
					continue
				}
				if k.Tag == "!!merge" {
					walk(v, path)
					continue
				}
				p := joinPath(path, strings.ToLower(k.Value))
				if seen[k.Value] {
					problems = append(problems, p+": given twice")
				}
				seen[k.Value] = true
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, item := range n.Content {
				walk(item, fmt.Sprintf("%s[%d]", path, i))
			}
		case yaml.ScalarNode:
			var v any
			if n.Decode(&v) != nil {
				problems = append(problems, fmt.Sprintf("%s: line %d: the value is not a valid %s; quote it to make it text", orTop(path), n.Line, strings.TrimPrefix(n.Tag, "!!")))
			}
		}
		// Aliases are checked where their anchor is.
	}
	walk(root, "")
	if len(problems) == 0 {
		// Not one of the mistakes above (aliasing, a merge of a list):
		// yaml's own words, without what they quote.
		return yamlSyntaxError(nil, err)
	}
	sort.Strings(problems)
	return errors.New(strings.Join(problems, "; "))
}

func orTop(path string) string {
	if path == "" {
		return "the file"
	}
	return path
}

// normalize lower-cases keys as viper does (so that the unknown-key check
// sees what viper sees) and drops null values, so that a section left with
// only comments ("slack:") keeps its defaults instead of wiping them.
func normalize(val any, path string, problems *[]string) any {
	switch m := val.(type) {
	case map[string]any:
		out := make(map[string]any, len(m))
		for k, v := range m {
			addKey(out, k, v, path, problems)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, v := range m {
			addKey(out, fmt.Sprint(k), v, path, problems)
		}
		return out
	case []any:
		out := make([]any, len(m))
		for i, v := range m {
			out[i] = normalize(v, fmt.Sprintf("%s[%d]", path, i), problems)
		}
		return out
	}
	return val
}

func addKey(out map[string]any, key string, val any, path string, problems *[]string) {
	if val == nil {
		return
	}
	lower := strings.ToLower(key)
	p := joinPath(path, lower)
	if _, dup := out[lower]; dup {
		*problems = append(*problems, fmt.Sprintf("%s: given twice (keys are not case-sensitive)", p))
		return
	}
	out[lower] = normalize(val, p, problems)
}

func joinPath(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// unknownKeys appends "unknown key" problems for the keys of val that t has
// no mapstructure field for. A value of the wrong shape is left to the
// decoder, which reports it.
func unknownKeys(val any, t reflect.Type, path string, problems *[]string) {
	switch t.Kind() {
	case reflect.Struct:
		m, ok := val.(map[string]any)
		if !ok {
			return
		}
		for k, v := range m {
			f, ok := fieldByTag(t, k)
			if !ok {
				*problems = append(*problems, fmt.Sprintf("%s: unknown key", joinPath(path, k)))
				continue
			}
			unknownKeys(v, f.Type, joinPath(path, k), problems)
		}
	case reflect.Slice:
		list, ok := val.([]any)
		if !ok {
			return
		}
		for i, v := range list {
			unknownKeys(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i), problems)
		}
	}
}

func fieldByTag(t reflect.Type, tag string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Tag.Get("mapstructure") == tag {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// scalarKey is a key that holds one value (not a list or a map), with its
// default.
type scalarKey struct {
	path string
	def  any
}

// scalarKeys lists every key that can be set from the environment, with its
// default taken from defaults().
func scalarKeys() []scalarKey {
	var keys []scalarKey
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			p := joinPath(prefix, f.Tag.Get("mapstructure"))
			switch f.Type.Kind() {
			case reflect.Struct:
				walk(v.Field(i), p)
			case reflect.Slice, reflect.Map:
				// Lists and maps come from the file (and for two lists
				// from applyEnvLists), never as one environment string.
			default:
				keys = append(keys, scalarKey{path: p, def: v.Field(i).Interface()})
			}
		}
	}
	walk(reflect.ValueOf(defaults()), "")
	return keys
}

// tidyDecodeError turns mapstructure's multi-line report into one line of
// "key: problem" parts, each in this package's words: which key, what it
// must be and what kind of value it got, never the value (describeDecode).
func tidyDecodeError(err error) error {
	var parts []string
	var walk func(error)
	walk = func(e error) {
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				walk(inner)
			}
			return
		case *mapstructure.DecodeError:
			parts = append(parts, describeDecode(u.Name(), u.Unwrap()))
			return
		case interface{ Unwrap() error }:
			if inner := u.Unwrap(); inner != nil {
				walk(inner)
				return
			}
		}
		parts = append(parts, e.Error())
	}
	walk(err)
	return errors.New(strings.Join(parts, "; "))
}

// hookError is a decode hook's complaint, written without the value.
type hookError string

func (e hookError) Error() string { return string(e) }

// describeDecode says what is wrong with the value at key. It trusts only
// messages of its own making: those of mapstructure and of the hooks'
// parsers (time.ParseDuration, strconv) may quote the value, and a value
// may be a secret.
func describeDecode(key string, err error) string {
	var (
		unconvertible *mapstructure.UnconvertibleTypeError
		parse         *mapstructure.ParseError
		hook          hookError
	)
	want, known := typeAt(key)
	switch {
	case errors.As(err, &hook):
		return key + ": " + hook.Error()
	case errors.As(err, &unconvertible):
		return fmt.Sprintf("%s: must be %s, got %s", key, describeType(unconvertible.Expected.Type()), describeValue(unconvertible.Value))
	case errors.As(err, &parse):
		return fmt.Sprintf("%s: must be %s, got %s", key, describeType(parse.Expected.Type()), describeValue(parse.Value))
	case known:
		return fmt.Sprintf("%s: must be %s", key, describeType(want))
	case secretPath(key):
		return key + ": has the wrong type"
	}
	return key + ": " + err.Error()
}

// typeAt is the type of Config at a key path such as intake.api_keys[0].key.
func typeAt(path string) (reflect.Type, bool) {
	t := reflect.TypeOf(Config{})
	for _, seg := range strings.Split(path, ".") {
		name, rest, _ := strings.Cut(seg, "[")
		if name != "" {
			if t.Kind() == reflect.Map {
				t = t.Elem()
			} else {
				if t.Kind() != reflect.Struct {
					return nil, false
				}
				f, ok := fieldByTag(t, name)
				if !ok {
					return nil, false
				}
				t = f.Type
			}
		}
		for ; rest != ""; _, rest, _ = strings.Cut(rest, "[") {
			if t.Kind() != reflect.Slice {
				return nil, false
			}
			t = t.Elem()
		}
	}
	return t, true
}

// describeType says in words what a value of Config's type t looks like.
func describeType(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration like 30s, 5m or 4h"
	case t == stringSliceType:
		return "a list of text (or one comma-separated text)"
	}
	switch t.Kind() {
	case reflect.String:
		return "text"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Map:
		return "a mapping of keys to " + describeType(t.Elem())
	case reflect.Slice:
		return "a list of " + strings.TrimPrefix(describeType(t.Elem()), "a ")
	case reflect.Struct:
		var keys []string
		for i := range t.NumField() {
			keys = append(keys, t.Field(i).Tag.Get("mapstructure"))
		}
		if len(keys) <= 4 {
			return "a mapping with keys " + strings.Join(keys, ", ")
		}
		return "a mapping of keys"
	}
	return t.String()
}

// describeValue names the kind of value v is, never the value.
func describeValue(v any) string {
	if v == nil {
		return "nothing"
	}
	if _, ok := v.(time.Time); ok {
		return "a date"
	}
	switch reflect.TypeOf(v).Kind() {
	case reflect.String:
		return "text"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return "a value of another kind"
}

var durationType = reflect.TypeOf(time.Duration(0))

// durationNeedsUnit refuses a bare non-zero number for a duration: weak
// decoding would read "timeout: 10" as ten nanoseconds.
func durationNeedsUnit(from, to reflect.Type, data any) (any, error) {
	if to != durationType || from == durationType {
		return data, nil
	}
	switch from.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		if !reflect.ValueOf(data).IsZero() {
			return nil, hookError("a duration needs a unit, like 30s, 5m or 4h")
		}
	}
	return data, nil
}

// parseDuration reads text as a duration. It replaces mapstructure's hook,
// whose error (time.ParseDuration's) quotes the text.
func parseDuration(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to != durationType {
		return data, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(reflect.ValueOf(data).String()))
	if err != nil {
		return nil, hookError("must be a duration like 30s, 5m or 4h")
	}
	return d, nil
}

var stringSliceType = reflect.TypeOf([]string(nil))

// commaList reads "a, b" as a list of strings: lists of ids are often
// written on one line, and spaces after the commas are not part of an id.
func commaList(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to != stringSliceType {
		return data, nil
	}
	var out []string
	for _, s := range strings.Split(reflect.ValueOf(data).String(), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// envSecrets returns the secret values the environment sets: those of the
// scalar secret keys, and the secret halves of the two lists.
func envSecrets() []string {
	var out []string
	for _, k := range scalarKeys() {
		if i := strings.LastIndexByte(k.path, '.'); isSecretName(k.path[i+1:]) {
			if s := os.Getenv(EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(k.path, ".", "_"))); s != "" {
				out = append(out, s)
			}
		}
	}
	for _, name := range []string{envAPIKeys, envSigningKeys} {
		for _, entry := range strings.Split(os.Getenv(name), ",") {
			if _, secret, ok := strings.Cut(entry, ":"); ok && secret != "" {
				out = append(out, secret)
			}
		}
	}
	return out
}

// applyEnvLists replaces the file's api keys and signing keys by the
// environment's, if set.
func applyEnvLists(c *Config) error {
	if s, ok := os.LookupEnv(envAPIKeys); ok && s != "" {
		pairs, err := parsePairs(envAPIKeys, s, "name:key")
		if err != nil {
			return err
		}
		c.Intake.APIKeys = make([]APIKey, len(pairs))
		for i, p := range pairs {
			c.Intake.APIKeys[i] = APIKey{Name: p[0], Key: p[1]}
		}
	}
	if s, ok := os.LookupEnv(envSigningKeys); ok && s != "" {
		pairs, err := parsePairs(envSigningKeys, s, "id:secret")
		if err != nil {
			return err
		}
		c.Tokens.SigningKeys = make([]SigningKey, len(pairs))
		for i, p := range pairs {
			c.Tokens.SigningKeys[i] = SigningKey{ID: p[0], Secret: p[1]}
		}
	}
	return nil
}

// parsePairs splits "a:b,c:d" at commas, then each entry at its first colon.
// Errors never quote the entry: its second half is a secret.
func parsePairs(name, s, form string) ([][2]string, error) {
	var out [][2]string
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		before, after, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf("%s: entry %d is not %s", name, i+1, form)
		}
		out = append(out, [2]string{strings.TrimSpace(before), after})
	}
	return out, nil
}

// applyPolicyDefaults fills policy keys the file left out. It looks at the
// file itself, so that an explicit "required_approvals: 0" reaches Validate
// as 0 instead of turning silently into the default.
func applyPolicyDefaults(c *Config, file map[string]any) {
	raw, _ := file["policies"].([]any)
	for i := range c.Policies {
		p := &c.Policies[i]
		var m map[string]any
		if i < len(raw) {
			m, _ = raw[i].(map[string]any)
		}
		if _, given := m["required_approvals"]; !given {
			p.RequiredApprovals = defaultRequiredApprovals
		}
		if p.OnExpiry == "" {
			p.OnExpiry = defaultOnExpiry
		}
		if notify, _ := m["notify"].(map[string]any); notify["requester"] == nil {
			p.Notify.Requester = true // told unless the file says requester: false
		}
	}
}
