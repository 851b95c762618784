package bolt

import (
	"reflect"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

// cloneTask returns a copy of t that shares no memory with it: what Create
// hands back of the task it wrote, without decoding the JSON it has just
// encoded. The copier is made by reflection from the type, so that a field
// added to the task (or to a type in it) is copied too; clone_test.go
// checks it against the round trip through JSON that Get makes.
func cloneTask(t *approvals.Task) *approvals.Task {
	c := new(approvals.Task)
	copyTask(reflect.ValueOf(c).Elem(), reflect.ValueOf(t).Elem())
	return c
}

// copyTask deep-copies one approvals.Task; made once, never changed.
var copyTask = newCopier(reflect.TypeFor[approvals.Task](), copiers{})

var timeType = reflect.TypeFor[time.Time]()

// copier sets dst, settable and of the copier's type, to a deep copy of
// src. Strings are shared (they cannot change); time.Time is a value (its
// *Location is shared: locations do not change); unexported fields are
// left out, as JSON leaves them out. nil for a type that holds nothing to
// share: assignment copies it.
type copier func(dst, src reflect.Value)

// copiers are the copiers made so far, by type; one still being made (a
// type that contains itself) is called through its pointer.
type copiers map[reflect.Type]*struct {
	c    copier
	made bool
}

// newCopier makes the copier of t.
func newCopier(t reflect.Type, done copiers) copier {
	if e, ok := done[t]; ok {
		if e.made {
			return e.c
		}
		return func(dst, src reflect.Value) { e.c(dst, src) }
	}
	e := &struct {
		c    copier
		made bool
	}{}
	done[t] = e
	defer func() { e.made = true }()
	c := newCopierOf(t, done)
	e.c = c
	return c
}

func newCopierOf(t reflect.Type, done copiers) copier {
	var c copier
	switch t.Kind() {
	case reflect.Pointer:
		elem := newCopier(t.Elem(), done)
		c = func(dst, src reflect.Value) {
			if src.IsNil() {
				dst.SetZero()
				return
			}
			p := reflect.New(t.Elem())
			if elem == nil {
				p.Elem().Set(src.Elem())
			} else {
				elem(p.Elem(), src.Elem())
			}
			dst.Set(p)
		}
	case reflect.Slice:
		elem := newCopier(t.Elem(), done)
		c = func(dst, src reflect.Value) {
			if src.IsNil() {
				dst.SetZero()
				return
			}
			s := reflect.MakeSlice(t, src.Len(), src.Len())
			if elem == nil {
				reflect.Copy(s, src)
			} else {
				for i := range src.Len() {
					elem(s.Index(i), src.Index(i))
				}
			}
			dst.Set(s)
		}
	case reflect.Map:
		key, elem := newCopier(t.Key(), done), newCopier(t.Elem(), done)
		c = func(dst, src reflect.Value) {
			if src.IsNil() {
				dst.SetZero()
				return
			}
			m := reflect.MakeMapWithSize(t, src.Len())
			for it := src.MapRange(); it.Next(); {
				k, v := it.Key(), it.Value()
				if key != nil {
					kc := reflect.New(t.Key()).Elem()
					key(kc, k)
					k = kc
				}
				if elem != nil {
					vc := reflect.New(t.Elem()).Elem()
					elem(vc, v)
					v = vc
				}
				m.SetMapIndex(k, v)
			}
			dst.Set(m)
		}
	case reflect.Interface:
		c = func(dst, src reflect.Value) {
			if src.IsNil() {
				dst.SetZero()
				return
			}
			v := reflect.New(src.Elem().Type()).Elem()
			if cp := newCopier(src.Elem().Type(), copiers{}); cp != nil {
				cp(v, src.Elem())
			} else {
				v.Set(src.Elem())
			}
			dst.Set(v)
		}
	case reflect.Struct:
		if t == timeType {
			break
		}
		type field struct {
			i int
			c copier // nil: assignment copies it
		}
		var deep, exported []field
		unexported := false
		for i := range t.NumField() {
			if !t.Field(i).IsExported() {
				unexported = true // JSON leaves it out: so does the copy
				continue
			}
			f := field{i, newCopier(t.Field(i).Type, done)}
			exported = append(exported, f)
			if f.c != nil {
				deep = append(deep, f)
			}
		}
		switch {
		case unexported:
			c = func(dst, src reflect.Value) {
				for _, f := range exported {
					if f.c == nil {
						dst.Field(f.i).Set(src.Field(f.i))
					} else {
						f.c(dst.Field(f.i), src.Field(f.i))
					}
				}
			}
		case len(deep) > 0:
			c = func(dst, src reflect.Value) {
				dst.Set(src)
				for _, f := range deep {
					f.c(dst.Field(f.i), src.Field(f.i))
				}
			}
		}
	case reflect.Array:
		if elem := newCopier(t.Elem(), done); elem != nil {
			c = func(dst, src reflect.Value) {
				for i := range src.Len() {
					elem(dst.Index(i), src.Index(i))
				}
			}
		}
	case reflect.Chan, reflect.Func, reflect.UnsafePointer:
		panic("bolt: cannot copy a " + t.String())
	}
	return c
}
