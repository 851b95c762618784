package approvals

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"
)

// DecodeStrict decodes raw, which must be exactly one JSON value, into v,
// refusing what encoding/json lets through and an auditor must not: a key
// written twice in any object (encoding/json keeps the last, so a forged
// value placed first goes unseen by a reader that keeps the first), a key
// that names no field of v's type exactly (encoding/json skips unknown
// keys and matches names case-insensitively), anything but white space
// after the value, and text that is not UTF-8. Receipts are read through
// it, and so is anything else that is verified offline.
func DecodeStrict(raw []byte, v any) error {
	if !utf8.Valid(raw) {
		return errors.New("the JSON is not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := strictValue(dec, reflect.TypeOf(v), ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("the JSON has more after its value")
	}
	dec = json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("the JSON does not fit: %w", err)
	}
	return nil
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// strictValue reads one value from dec, checking its objects' keys
// against t (nil: any key, as for an interface or a type that decodes
// itself; duplicates are refused everywhere).
func strictValue(dec *json.Decoder, t reflect.Type, at string) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("the JSON is malformed%s: %w", where(at), err)
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) || t.Kind() == reflect.Interface) {
		t = nil
	}
	switch tok {
	case json.Delim('{'):
		var fields map[string]reflect.Type
		var elem reflect.Type
		switch {
		case t == nil:
		case t.Kind() == reflect.Struct:
			fields = map[string]reflect.Type{}
			jsonFields(t, fields)
		case t.Kind() == reflect.Map:
			elem = t.Elem()
		default:
			return fmt.Errorf("the JSON has an object%s where %s belongs", where(at), t)
		}
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return fmt.Errorf("the JSON is malformed%s: %w", where(at), err)
			}
			key, _ := tok.(string)
			path := key
			if at != "" {
				path = at + "." + key
			}
			if seen[key] {
				return fmt.Errorf("the JSON has the key %q twice%s", key, where(at))
			}
			seen[key] = true
			next := elem
			if fields != nil {
				ft, ok := fields[key]
				if !ok {
					return fmt.Errorf("the JSON has an unknown field %s", path)
				}
				next = ft
			}
			if err := strictValue(dec, next, path); err != nil {
				return err
			}
		}
		_, err = dec.Token() // '}'
		return err
	case json.Delim('['):
		var elem reflect.Type
		if t != nil {
			if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
				return fmt.Errorf("the JSON has an array%s where %s belongs", where(at), t)
			}
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := strictValue(dec, elem, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
		return err
	}
	return nil
}

// jsonFields adds the JSON names of struct t's fields, as encoding/json
// names them (embedded structs' fields promoted), to fields.
func jsonFields(t reflect.Type, fields map[string]reflect.Type) {
	var embedded []reflect.Type
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if ft := f.Type; f.Anonymous && name == "" {
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				embedded = append(embedded, ft)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	// An embedded struct's fields are promoted unless a shallower one
	// has the name.
	for _, e := range embedded {
		promoted := map[string]reflect.Type{}
		jsonFields(e, promoted)
		for name, ft := range promoted {
			if _, ok := fields[name]; !ok {
				fields[name] = ft
			}
		}
	}
}

func where(at string) string {
	if at == "" {
		return " at the top"
	}
	return " at " + at
}
