package bolt

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
)

// fill sets every field reachable from v to a value other than its zero:
// strings, numbers, booleans, times, two-element slices, one-entry maps and
// pointers to filled values. A field added to approvals.Task is filled too.
func fill(v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("s" + v.Type().Name())
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(2 + depth))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(3 + depth))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), depth+1)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k, depth+1)
		fill(e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		if v.Type() == timeType {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 22, 14, 2, 0, 123456789, time.UTC).Add(time.Duration(depth) * time.Hour)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), depth+1)
			}
		}
	}
}

// refs collects the addresses of everything v points to: slices' arrays,
// maps and pointees.
func refs(v reflect.Value, out map[uintptr]string, path string) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			out[v.Pointer()] = path
			refs(v.Elem(), out, path+"*")
		}
	case reflect.Slice:
		if v.Len() > 0 {
			out[v.Pointer()] = path
			for i := range v.Len() {
				refs(v.Index(i), out, path+"[]")
			}
		}
	case reflect.Map:
		if !v.IsNil() {
			out[v.Pointer()] = path
			for it := v.MapRange(); it.Next(); {
				refs(it.Value(), out, path+"[k]")
			}
		}
	case reflect.Struct:
		if v.Type() == timeType {
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				refs(v.Field(i), out, path+"."+v.Type().Field(i).Name)
			}
		}
	}
}

func filledTask(t *testing.T) *approvals.Task {
	t.Helper()
	var task approvals.Task
	fill(reflect.ValueOf(&task).Elem(), 0)
	return &task
}

// TestCloneTaskIsWhatGetReturns: the clone Create hands back equals the
// round trip through JSON that Get makes, for a task with every field set,
// and shares no memory with the original.
func TestCloneTaskIsWhatGetReturns(t *testing.T) {
	t.Parallel()
	task := filledTask(t)
	raw, err := json.Marshal(task)
	if err != nil {
		t.Fatalf("the filled task has no JSON form: %v", err)
	}
	var decoded approvals.Task
	if err := json.Unmarshal(raw, &decoded); err != nil {
		t.Fatal(err)
	}
	clone := cloneTask(task)
	if !reflect.DeepEqual(clone, &decoded) {
		got, _ := json.Marshal(clone)
		t.Errorf("clone differs from the JSON round trip:\nclone %s\njson  %s", got, raw)
	}
	if !reflect.DeepEqual(clone, task) {
		t.Error("clone differs from the original")
	}
	orig, copied := map[uintptr]string{}, map[uintptr]string{}
	refs(reflect.ValueOf(task).Elem(), orig, "task")
	refs(reflect.ValueOf(clone).Elem(), copied, "task")
	if len(orig) == 0 {
		t.Fatal("the filled task holds no references: the test checks nothing")
	}
	for addr, path := range copied {
		if o, shared := orig[addr]; shared {
			t.Errorf("clone's %s shares memory with the original's %s", path, o)
		}
	}
}

// TestCreateHandsBackWhatGetReturns: through the store, for a filled task.
func TestCreateHandsBackWhatGetReturns(t *testing.T) {
	t.Parallel()
	s := openStore(t, t.TempDir()+"/x.db")
	task := filledTask(t)
	task.ID = "filled"
	stored, created, err := s.Create(t.Context(), task)
	if err != nil || !created {
		t.Fatalf("Create: %v, created %v", err, created)
	}
	got, err := s.Get(t.Context(), "filled")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stored, got) {
		a, _ := json.Marshal(stored)
		b, _ := json.Marshal(got)
		t.Errorf("Create handed back\n%s\nGet returns\n%s", a, b)
	}
	stored.Outbox[0].Kind = "changed"
	if task.Outbox[0].Kind == "changed" {
		t.Error("Create's task shares its outbox with the caller's")
	}
}

// benchTask is a task as intake makes it: a nonce, a token hash, a post
// job and the audit record of its receipt.
func benchTask() *approvals.Task {
	now := time.Now().UTC()
	task := pendingTask("8900", now)
	task.Nonce, task.TokenHash = make([]byte, 32), make([]byte, 32)
	task.Enqueue(approvals.JobPost, now)
	task.Record(approvals.AuditRecord{At: now, Event: "received", Detail: "policy production"})
	return task
}

func BenchmarkCloneTask(b *testing.B) {
	task := benchTask()
	b.ReportAllocs()
	for b.Loop() {
		_ = cloneTask(task)
	}
}

func BenchmarkDecodeTask(b *testing.B) {
	raw, _ := json.Marshal(benchTask())
	b.ReportAllocs()
	for b.Loop() {
		var t approvals.Task
		_ = json.Unmarshal(raw, &t)
	}
}
