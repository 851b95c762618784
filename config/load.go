package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
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
// file at path (none when path is "") and the environment.
func loadBytes(path string, data []byte) (*Config, error) {
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
		file, err = parseFile(data)
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
		mapstructure.StringToTimeDurationHookFunc(),
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
// approval gate's configuration must not pass silently.
func parseFile(data []byte) (map[string]any, error) {
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, err
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
// "key: problem" parts. mapstructure keeps values out of its messages, so no
// secret is quoted.
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
			parts = append(parts, u.Name()+": "+u.Unwrap().Error())
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
			return nil, errors.New("a duration needs a unit, like 30s, 5m or 4h")
		}
	}
	return data, nil
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
	}
}
