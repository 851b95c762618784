// Package bolt is the embedded task store: one bbolt file, one process. It is
// the default backend and needs nothing but a writable path.
//
// Layout, one bucket each:
//
//	tasks   id → JSON of approvals.Task (its JSON tags are the storage form)
//	due     8-byte big-endian due time + id → empty: every task that needs
//	        attention some time, by approvals.Task.DueAt, so Due is a cursor
//	        seek and never a scan
//	leased  id → empty: tasks whose outbox lease is held, so Open can clear
//	        them without reading every task
//	health  "ping" → 8-byte big-endian unix nanoseconds of the last Ping:
//	        the record Ping writes to prove the file takes writes; no task
//	        operation reads it
//
// The indexes are written in the same transaction as the task, so they
// never disagree with it.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/approvalbot/approvalbot/approvals"
)

const (
	bucketTasks  = "tasks"
	bucketDue    = "due"
	bucketLeased = "leased"
	bucketHealth = "health"
)

var buckets = []string{bucketTasks, bucketDue, bucketLeased, bucketHealth, bucketDelegations}

// healthKey is Ping's record in the health bucket.
var healthKey = []byte("ping")

// DefaultLockTimeout is how long Open waits for the file lock before it
// says the file is in use.
const DefaultLockTimeout = time.Second

// maxBatch bounds how many writes share one transaction, so that one
// commit stays short.
const maxBatch = 256

// fillPercent is how full bbolt packs the pages it splits in the tasks
// and the due index (its default is half). Task ids and due times mostly
// grow (a tool's task numbers, the time of the next job), and a burst of
// intakes is written in few commits (group commit), so the new records
// land together at the end of their bucket, where pages split at half stay
// half empty for good: twice the pages to write, map and keep resident.
// 10,000 pending tasks intaken by 32 clients: 49.4 → 44.8 MiB of RSS
// (BENCHMARKS.md).
const fillPercent = 0.9

// Store is an approvals.Store in a bbolt file.
//
// Writes go through one committer goroutine that runs every write waiting
// at that moment in one read-write transaction: one fsync for all of them
// instead of one each. A lone write waits for nothing; under load the
// writes that arrive during a commit form the next one. fsync costs
// milliseconds, so without this intake would top out at a few hundred
// tasks a second.
type Store struct {
	db        *bbolt.DB
	ops       chan *op
	closing   chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// op is one write. run does the write in tx and keeps its outcome in its
// own variables; it returns an error only when it may have written part of
// its change, which fails the whole transaction. It may run more than once.
type op struct {
	run  func(tx *bbolt.Tx) error
	done chan error
}

var _ approvals.Store = (*Store)(nil)

type options struct {
	lockTimeout time.Duration
	// openFile replaces os.OpenFile for bbolt's read-write open; tests
	// hand bbolt a read-only descriptor to make every write fail.
	openFile func(name string, flag int, perm os.FileMode) (*os.File, error)
}

// Option tunes Open.
type Option func(*options)

// WithLockTimeout sets how long Open waits for another process to release
// the file (default DefaultLockTimeout).
func WithLockTimeout(d time.Duration) Option {
	return func(o *options) { o.lockTimeout = d }
}

// Open opens or creates the store file at path (mode 0600). The file is
// locked: a second process opening it gets an error saying it is in use. A
// damaged file (cut short, not a bbolt file, pages that do not fit
// together) is an error naming the file and telling to restore it from a
// backup or move it aside, never a crash; see checkFile.
func Open(path string, opts ...Option) (*Store, error) {
	o := options{lockTimeout: DefaultLockTimeout, openFile: os.OpenFile}
	for _, opt := range opts {
		opt(&o)
	}
	if o.lockTimeout <= 0 {
		// bbolt waits forever on a zero timeout; a start-up must not hang.
		o.lockTimeout = DefaultLockTimeout
	}
	if err := checkFile(path, o.lockTimeout); err != nil {
		return nil, err
	}
	db, err := openDB(path, o)
	if err != nil {
		return nil, err
	}
	if err := prepare(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	s := &Store{
		db:      db,
		ops:     make(chan *op),
		closing: make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go s.commitLoop()
	return s, nil
}

// openDB opens the file for reading and writing. checkFile has walked it
// as bbolt's own walk does, so that walk finds nothing; should bbolt still
// panic in this goroutine, the panic becomes the damaged-file error and
// the file bbolt left open is closed.
func openDB(path string, o options) (db *bbolt.DB, err error) {
	var file *os.File
	defer func() {
		if r := recover(); r != nil {
			if file != nil {
				_ = file.Close()
			}
			db, err = nil, damaged(path, fmt.Sprint(r))
		}
	}()
	db, err = bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: o.lockTimeout,
		// The freelist is rebuilt by a scan after a crash instead of being
		// written on every commit: fewer pages per write. Commits still
		// fsync (NoSync stays false): an approval acknowledged to Slack
		// must survive a crash.
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := o.openFile(name, flag, perm)
			file = f
			return f, err
		},
	})
	if err != nil {
		return nil, openError(path, err)
	}
	return db, nil
}

// prepare creates the buckets a new file lacks and clears the leases a
// stopped process left. It writes only when there is something to write:
// a start with nothing to do costs no commit.
func prepare(db *bbolt.DB) error {
	ready := false
	if err := db.View(func(tx *bbolt.Tx) error {
		for _, name := range buckets {
			if tx.Bucket([]byte(name)) == nil {
				return nil
			}
		}
		k, _ := tx.Bucket([]byte(bucketLeased)).Cursor().First()
		ready = k == nil
		return nil
	}); err != nil || ready {
		return err
	}
	return db.Update(func(tx *bbolt.Tx) error {
		for _, name := range buckets {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return clearLeases(tx, time.Now().UTC())
	})
}

// clearLeases drops every outbox lease. The file lock makes this process
// the only one using the store, so any lease in it belongs to a process
// that has stopped: waiting for it to run out (up to a lease's length)
// would only delay the work the dead process left half done. Clearing it
// makes that work due at once, and so does ending the waits of its jobs
// that had failed (a restart is when an admin expects the bot to try
// again, perhaps after fixing what failed) or waited for their turn in the
// dead process's rate limits; work scheduled for later (an escalation, a
// reminder) keeps its time.
func clearLeases(tx *bbolt.Tx, now time.Time) error {
	var ids [][]byte
	// Collect first: a bucket must not change under its cursor.
	if err := tx.Bucket([]byte(bucketLeased)).ForEach(func(k, _ []byte) error {
		ids = append(ids, append([]byte(nil), k...))
		return nil
	}); err != nil {
		return err
	}
	for _, id := range ids {
		t, err := get(tx, string(id))
		if errors.Is(err, approvals.ErrNotFound) {
			if err := tx.Bucket([]byte(bucketLeased)).Delete(id); err != nil {
				return err
			}
			continue
		}
		if errors.Is(err, approvals.ErrCorrupt) {
			// Left as it is: the bot must start with a damaged record in
			// its file. Due names the record, and a repaired one loses its
			// lease at the next start.
			continue
		}
		if err != nil {
			return err
		}
		before := indexOf(t)
		t.Lease = approvals.Lease{}
		for i := range t.Outbox {
			if j := &t.Outbox[i]; (j.Attempts > 0 || j.Waiting) && j.NotBefore.After(now) {
				j.NotBefore = now
			}
		}
		t.Version++
		if _, err := put(tx, before, t); err != nil {
			return fmt.Errorf("clear lease of task %s: %w", id, err)
		}
	}
	return nil
}

// Close waits for the write in progress, closes the file and releases its
// lock. Later calls fail with approvals.ErrUnavailable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		<-s.stopped
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("bolt: close: %w", err)
		}
	})
	return s.closeErr
}

var errClosed = errors.New("store closed")

// write runs run in the next group commit and returns once it is durable.
func (s *Store) write(ctx context.Context, run func(tx *bbolt.Tx) error) error {
	done, err := s.submit(ctx, run)
	if err != nil {
		return err
	}
	// Taken: the outcome is waited for even if ctx ends now, so that the
	// caller never hears "failed" of a write that was made.
	return <-done
}

// submit hands run to the committer and returns the channel its outcome
// will be sent on (buffered: the committer never waits for the reader).
func (s *Store) submit(ctx context.Context, run func(tx *bbolt.Tx) error) (<-chan error, error) {
	o := &op{run: run, done: make(chan error, 1)}
	select {
	case s.ops <- o:
		return o.done, nil
	case <-s.closing:
		return nil, errClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *Store) commitLoop() {
	defer close(s.stopped)
	for {
		var batch []*op
		select {
		case o := <-s.ops:
			batch = append(batch, o)
		case <-s.closing:
			return
		}
	more:
		for len(batch) < maxBatch {
			select {
			case o := <-s.ops:
				batch = append(batch, o)
			default:
				break more
			}
		}
		s.commit(batch)
	}
}

// commit runs the batch in one transaction. When that fails (an op's write
// or the commit itself), nothing of it was written and each op runs again
// in a transaction of its own, so that a failure is only its own op's.
func (s *Store) commit(batch []*op) {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		for _, o := range batch {
			if err := o.run(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && len(batch) > 1 {
		for _, o := range batch {
			o.done <- s.db.Update(o.run)
		}
		return
	}
	for _, o := range batch {
		o.done <- err
	}
}

// maxIDLen keeps ids well inside bbolt's key size; approvals.TaskRecordID
// makes ids of at most a few hundred bytes.
const maxIDLen = 1024

// Create writes t with Version 1 unless a task with its id exists, in which
// case it returns that task untouched.
func (s *Store) Create(ctx context.Context, t *approvals.Task) (*approvals.Task, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	if t.ID == "" || len(t.ID) > maxIDLen {
		return nil, false, approvals.Invalidf("task id must have 1 to %d bytes", maxIDLen)
	}
	// The copy written is handed back: a deep copy, which shares nothing
	// with the caller's task, as a Get would return it (without decoding
	// the JSON just encoded, a third of intake's own work). It is encoded
	// here, by the caller, not by the committer, whose goroutine every
	// write goes through one after the other.
	c := cloneTask(t)
	c.Version = 1
	data, encodeErr := encode(c)
	var (
		existing *approvals.Task
		failed   error // an outcome that wrote nothing
	)
	err := s.write(ctx, func(tx *bbolt.Tx) error {
		existing, failed = nil, nil
		var err error
		if existing, err = get(tx, t.ID); !errors.Is(err, approvals.ErrNotFound) {
			failed = err // nil when the task exists: idempotent intake, it stands
			return nil
		}
		if encodeErr != nil {
			failed = encodeErr
			return nil
		}
		return putEncoded(tx, index{}, c, data)
	})
	if err == nil {
		err = failed
	}
	if err != nil {
		return nil, false, storeError("create task "+t.ID, err)
	}
	if existing != nil {
		return existing, false, nil
	}
	return c, true, nil
}

// Get returns the task, or approvals.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*approvals.Task, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var t *approvals.Task
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		t, err = get(tx, id)
		return err
	})
	if err != nil {
		return nil, storeError("get task "+id, err)
	}
	return t, nil
}

// Update runs fn on a fresh copy of the task inside one read-write
// transaction. bbolt runs one writer at a time, so nothing can come in
// between the read and the write: no retry loop. fn runs again only if the
// group commit it was part of failed.
func (s *Store) Update(ctx context.Context, id string, fn func(*approvals.Task) error) (*approvals.Task, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var (
		t        *approvals.Task
		failed   error // the store's outcome that wrote nothing
		fnErr    error
		panicked any
	)
	err := s.write(ctx, func(tx *bbolt.Tx) error {
		t, failed, fnErr, panicked = nil, nil, nil, nil
		cur, err := get(tx, id)
		if err != nil {
			failed = err
			return nil
		}
		// Taken before fn runs: fn may change the outbox in place.
		before, version := indexOf(cur), cur.Version
		if panicked, fnErr = call(fn, cur); fnErr != nil || panicked != nil {
			return nil // fn changed only cur, which is dropped
		}
		cur.ID, cur.Version = id, version+1
		if _, err := put(tx, before, cur); err != nil {
			if errors.Is(err, errEncode) {
				failed = err
				return nil
			}
			return err
		}
		t = cur
		return nil
	})
	switch {
	case panicked != nil:
		panic(panicked) // in the caller's goroutine, as without group commit
	case fnErr != nil:
		return nil, fnErr
	case err == nil && failed != nil:
		err = failed
	}
	if err != nil {
		return nil, storeError("update task "+id, err)
	}
	return t, nil
}

// call runs fn on t, turning a panic into a value: fn runs on the
// committer goroutine, which must survive it.
func call(fn func(*approvals.Task) error, t *approvals.Task) (panicked any, err error) {
	defer func() {
		if r := recover(); r != nil {
			panicked = r
		}
	}()
	return nil, fn(t)
}

// Due returns one page of at most limit tasks due at or before before,
// earliest first. The cursor is the due-index key of the page's last record
// in hex: the walk goes on at the first key after it, so a task that left
// the index in between does not lose the walk its place. A record that
// cannot be decoded counts toward limit like a task, so that a page stays
// bounded however many there are.
func (s *Store) Due(ctx context.Context, before time.Time, after approvals.Cursor, limit int) (approvals.DuePage, error) {
	if err := ctx.Err(); err != nil {
		return approvals.DuePage{}, err
	}
	if limit <= 0 {
		return approvals.DuePage{}, storeError("due tasks", approvals.Invalidf("page limit %d, want at least 1", limit))
	}
	from, err := decodeCursor(after)
	if err != nil {
		return approvals.DuePage{}, storeError("due tasks", err)
	}
	end := dueTime(before)
	var page approvals.DuePage
	err = s.db.View(func(tx *bbolt.Tx) error {
		page = approvals.DuePage{}
		c := tx.Bucket([]byte(bucketDue)).Cursor()
		k, _ := c.First()
		if from != nil {
			if k, _ = c.Seek(from); k != nil && bytes.Equal(k, from) {
				k, _ = c.Next()
			}
		}
		var last []byte
		for ; k != nil && due(k) <= end; k, _ = c.Next() {
			if len(page.Tasks)+len(page.Corrupt) == limit {
				page.Next = encodeCursor(last)
				return nil
			}
			last = k
			if len(k) <= 8 {
				// No code writes such a key; it names no task to skip.
				page.Corrupt = append(page.Corrupt, "due index entry "+hex.EncodeToString(k))
				continue
			}
			id := string(k[8:])
			t, err := get(tx, id)
			switch {
			case errors.Is(err, approvals.ErrNotFound):
				continue // cannot happen while writes keep the index; never hand out a ghost
			case errors.Is(err, approvals.ErrCorrupt):
				page.Corrupt = append(page.Corrupt, id)
				continue
			case err != nil:
				return err
			}
			if key, ok := dueKey(t); !ok || !bytes.Equal(key, k) {
				continue // stale entry: the task is listed under its real due time
			}
			page.Tasks = append(page.Tasks, t)
		}
		return nil // the walk is done: Next stays ""
	})
	if err != nil {
		return approvals.DuePage{}, storeError("due tasks", err)
	}
	return page, nil
}

// due is the due time of a due-index key; a key too short to hold one
// sorts first, where Due names it.
func due(k []byte) uint64 {
	if len(k) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

func encodeCursor(key []byte) approvals.Cursor {
	return approvals.Cursor(hex.EncodeToString(key))
}

// decodeCursor returns the due-index key a cursor names (nil for the start).
func decodeCursor(c approvals.Cursor) ([]byte, error) {
	if c == "" {
		return nil, nil
	}
	key, err := hex.DecodeString(string(c))
	if err != nil || len(key) <= 8 {
		return nil, approvals.Invalidf("malformed due cursor %q", c)
	}
	return key, nil
}

// Ping writes the health record through the group commit and returns once
// it is durable: ready means writable, so a full disk, a file that turned
// read-only or a closed store fails it with approvals.ErrUnavailable. The
// write shares its commit (and fsync) with whatever else is being written.
// A write that has not finished when ctx ends fails it too, also with
// approvals.ErrUnavailable: a disk that hangs is not ready either.
func (s *Store) Ping(ctx context.Context) error {
	var at [8]byte
	binary.BigEndian.PutUint64(at[:], uint64(time.Now().UnixNano()))
	done, err := s.submit(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketHealth)).Put(healthKey, at[:])
	})
	if err == nil {
		select {
		case err = <-done:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ctx.Err()):
		return fmt.Errorf("bolt: ping: %w: the health write did not finish: %w", approvals.ErrUnavailable, err)
	default:
		return storeError("ping", err)
	}
}

var (
	// errCorrupt marks a file whose content this code did not write.
	errCorrupt = errors.New("store file corrupt")
	// errEncode marks a task that has no JSON form (a time past year
	// 9999): the caller's mistake, so it is approvals.ErrInvalid.
	errEncode = fmt.Errorf("%w: cannot encode task", approvals.ErrInvalid)
)

// storeError wraps err with the operation. Errors of bbolt itself (closed
// store, disk) are approvals.ErrUnavailable; not found, invalid input, a
// corrupt file or record and the caller's own cancellation are not.
func storeError(op string, err error) error {
	if errors.Is(err, approvals.ErrNotFound) || errors.Is(err, errCorrupt) || errors.Is(err, approvals.ErrCorrupt) ||
		errors.Is(err, approvals.ErrInvalid) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("bolt: %s: %w", op, err)
	}
	return fmt.Errorf("bolt: %s: %w: %w", op, approvals.ErrUnavailable, err)
}

// get reads and decodes one task; the result shares no memory with the
// transaction. A record that cannot be decoded is an
// *approvals.CorruptError naming it.
func get(tx *bbolt.Tx, id string) (*approvals.Task, error) {
	data := tx.Bucket([]byte(bucketTasks)).Get([]byte(id))
	if data == nil {
		return nil, approvals.ErrNotFound
	}
	var t approvals.Task
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, &approvals.CorruptError{Key: id, Err: err}
	}
	return &t, nil
}

// index is where a task stands in the indexes.
type index struct {
	due    []byte // nil when never due
	leased bool
}

func indexOf(t *approvals.Task) index {
	k, _ := dueKey(t)
	return index{due: k, leased: t.Lease.Owner != ""}
}

// encode is a task's stored form.
func encode(t *approvals.Task) ([]byte, error) {
	data, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("%w: task %s: %w", errEncode, t.ID, err)
	}
	return data, nil
}

// put writes t and moves its index entries from before (the zero index for
// a new task) to where t now stands. It returns the encoded task.
func put(tx *bbolt.Tx, before index, t *approvals.Task) ([]byte, error) {
	data, err := encode(t)
	if err != nil {
		return nil, err // before any write: the transaction is untouched
	}
	return data, putEncoded(tx, before, t, data)
}

// putEncoded is put with t already encoded as data.
func putEncoded(tx *bbolt.Tx, before index, t *approvals.Task, data []byte) error {
	tasks := tx.Bucket([]byte(bucketTasks))
	tasks.FillPercent = fillPercent
	if err := tasks.Put([]byte(t.ID), data); err != nil {
		return err
	}
	after := indexOf(t)
	if string(before.due) != string(after.due) {
		due := tx.Bucket([]byte(bucketDue))
		due.FillPercent = fillPercent
		if before.due != nil {
			if err := due.Delete(before.due); err != nil {
				return err
			}
		}
		if after.due != nil {
			if err := due.Put(after.due, []byte{}); err != nil {
				return err
			}
		}
	}
	if before.leased != after.leased {
		leased := tx.Bucket([]byte(bucketLeased))
		if after.leased {
			return leased.Put([]byte(t.ID), []byte{})
		}
		return leased.Delete([]byte(t.ID))
	}
	return nil
}

// dueKey is the task's key in the due index, if it is due some time.
func dueKey(t *approvals.Task) ([]byte, bool) {
	at, ok := t.DueAt()
	if !ok {
		return nil, false
	}
	k := make([]byte, 8+len(t.ID))
	binary.BigEndian.PutUint64(k, dueTime(at))
	copy(k[8:], t.ID)
	return k, true
}

// maxNanoSec is the last second unix nanoseconds can hold (the year 2262).
const maxNanoSec = math.MaxInt64 / int64(time.Second)

// dueTime orders times as unsigned integers: unix nanoseconds with the sign
// bit flipped, so that times before 1970 sort first. A time outside what
// unix nanoseconds can hold (the zero time of a task without expiry) is
// clamped to the nearest end.
func dueTime(at time.Time) uint64 {
	var n int64
	switch sec := at.Unix(); {
	case sec < -maxNanoSec:
		n = math.MinInt64
	case sec >= maxNanoSec:
		n = math.MaxInt64
	default:
		n = at.UnixNano()
	}
	return uint64(n) ^ (1 << 63)
}
