package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"runtime/debug"
	"syscall"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// damagedError is the error of a store file that cannot be opened for
// what is in it (as opposed to where it is: permissions, a missing
// directory, a lock). It names the file and what the operator can do,
// since no retry will help.
type damagedError struct{ path, why string }

func (e *damagedError) Error() string {
	return fmt.Sprintf("bolt: store file %s is damaged (%s); restore it from a backup or move it aside", e.path, e.why)
}

func damaged(path, why string) error { return &damagedError{path: path, why: why} }

// checkFile refuses a damaged file before bbolt opens it for writing.
//
// Opened for writing, bbolt rebuilds its freelist (NoFreelistSync) by
// walking every page of the file in a goroutine of its own, trusting each
// page: a page past the end of a truncated file is a memory fault there,
// and a page that fails one of its checks is a panic while that goroutine
// still reads the transaction being rolled back. Neither can be
// recovered; the process dies with exit status 2. (tx.Check makes the
// same walk on such a file, so it cannot be the check.) So the file is
// walked here first, with the checks bbolt's walk makes: every page a
// bucket reaches lies below the high-water mark (which lies within the
// file), says it is the page it was reached as, is a branch or leaf page,
// is reached once, and holds its keys in order, each element within the
// page. A file that passes gives bbolt's walk nothing to trip on.
//
// The file is first opened read-only by bbolt, which waits for the file
// lock (another process writing it is "in use", not damage) and validates
// the meta pages; then it is mapped read-only, as bbolt maps it, and every
// access is checked against its length, so nothing here can fault. Cost:
// a look at every page in use, about as much as bbolt's own walk
// (BenchmarkOpen). Only a missing file passes unlooked-at: bbolt creates
// it. An empty one is damage, never a new store: bbolt writes its meta
// pages before anything else, so a store file of zero bytes is one cut
// short, and starting empty on it would lose every pending task unseen.
func checkFile(path string, lockTimeout time.Duration) (err error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bolt: open %s: %w", path, err)
	}
	if info.Size() == 0 {
		return damaged(path, "it is empty, zero bytes, where a store file always holds its meta pages; only a missing file starts an empty store")
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return openError(path, err)
	}
	defer func() { _ = db.Close() }()
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("bolt: open %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	// Sized under the lock: no writer grows the file now.
	if info, err = f.Stat(); err != nil {
		return fmt.Errorf("bolt: open %s: %w", path, err)
	}
	data, unmap, err := mapFile(f, info.Size())
	if err != nil {
		return fmt.Errorf("bolt: open %s: read: %w", path, err)
	}
	defer unmap()
	defer func() {
		// Every access is checked against the file's length; only a file
		// cut short under the lock by something other than bbolt, or a bug
		// here, could still fault or panic. The start must not crash.
		if r := recover(); r != nil {
			err = damaged(path, fmt.Sprint("checking it failed: ", r))
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	w := &walker{data: data, pageSize: db.Info().PageSize}
	if why := w.check(); why != "" {
		return damaged(path, why)
	}
	return nil
}

// openError explains why bbolt could not open the file. An error of the
// operating system (permissions, a missing directory, out of memory) is
// about where the file is and is passed on as it is; anything else is
// bbolt's verdict on its content.
func openError(path string, err error) error {
	var (
		pathErr *fs.PathError
		errno   syscall.Errno
	)
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("bolt: open %s: store file is in use by another process", path)
	case errors.As(err, &pathErr), errors.As(err, &errno):
		return fmt.Errorf("bolt: open %s: %w", path, err)
	case errors.Is(err, berrors.ErrVersionMismatch):
		return damaged(path, fmt.Sprintf("not a store file of this version: %v", err))
	default:
		return damaged(path, fmt.Sprintf("not a readable bbolt file: %v", err))
	}
}

// bbolt's file format (go.etcd.io/bbolt/internal/common), in the byte
// order of the machine that wrote it, as bbolt writes its structs.
const (
	pageHeaderSize  = 16 // id u64, flags u16, count u16, overflow u32
	elementSize     = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags u32, pos u32, ksize u32, vsize u32
	branchPageFlag  = 0x01
	leafPageFlag    = 0x02
	bucketLeafFlag  = 0x01
	bucketHeader    = 16 // root pgid u64, sequence u64
	metaMagic       = 0xED0CDAED
	metaVersion     = 2
	metaChecksummed = 56 // the meta's bytes the checksum covers
	noFreelist      = ^uint64(0)
)

var order = binary.NativeEndian

// walker checks a store file's pages. Its methods return what is wrong
// ("" for nothing).
type walker struct {
	data      []byte // the whole file
	pageSize  int
	hwm       uint64 // pages in use: 0 … hwm-1
	reachable []bool
}

func (w *walker) check() string {
	m, ok := w.meta()
	if !ok {
		return "no valid meta page"
	}
	w.hwm = m.pgid
	if need := uint64(w.hwm) * uint64(w.pageSize); need > uint64(len(w.data)) || w.hwm < 2 {
		return fmt.Sprintf("it has %d bytes, its pages need %d: it was cut short", len(w.data), need)
	}
	w.reachable = make([]bool, w.hwm)
	w.reachable[0], w.reachable[1] = true, true
	if m.freelist != noFreelist {
		if m.freelist < 2 || m.freelist >= w.hwm {
			return fmt.Sprintf("the freelist is at page %d, outside the %d pages in use", m.freelist, w.hwm)
		}
		if why := w.claim(m.freelist, uint64(order.Uint32(w.header(m.freelist)[12:])), "the freelist"); why != "" {
			return why
		}
	}
	_, why := w.walk(m.root, nil, nil, "the root bucket")
	return why
}

type meta struct {
	root, freelist, pgid, txid uint64
}

// meta reads the meta page bbolt uses: of the two that are valid, the one
// of the later transaction.
func (w *walker) meta() (best meta, found bool) {
	for i := range 2 {
		at := i * w.pageSize
		if at+w.pageSize > len(w.data) {
			break
		}
		b := w.data[at+pageHeaderSize : at+w.pageSize]
		sum := fnv.New64a()
		_, _ = sum.Write(b[:metaChecksummed])
		if order.Uint32(b[0:]) != metaMagic || order.Uint32(b[4:]) != metaVersion || order.Uint64(b[metaChecksummed:]) != sum.Sum64() {
			continue
		}
		m := meta{root: order.Uint64(b[16:]), freelist: order.Uint64(b[32:]), pgid: order.Uint64(b[40:]), txid: order.Uint64(b[48:])}
		if !found || m.txid > best.txid {
			best, found = m, true
		}
	}
	return best, found
}

// header is the start of page id, which check has found to lie within
// the file (id < hwm).
func (w *walker) header(id uint64) []byte {
	at := id * uint64(w.pageSize)
	return w.data[at : at+pageHeaderSize]
}

// claim marks page id and its overflow pages as reached by what.
func (w *walker) claim(id, overflow uint64, what string) string {
	if overflow >= w.hwm-id {
		return fmt.Sprintf("page %d of %s runs past the %d pages in use", id, what, w.hwm)
	}
	for p := id; p <= id+overflow; p++ {
		if w.reachable[p] {
			return fmt.Sprintf("page %d of %s is also used by another page", p, what)
		}
		w.reachable[p] = true
	}
	return ""
}

// walk checks the subtree at page id, whose keys must lie in [lo, hi) (nil
// for no bound), and returns its last key.
func (w *walker) walk(id uint64, lo, hi []byte, what string) (last []byte, why string) {
	if id < 2 || id >= w.hwm {
		return nil, fmt.Sprintf("%s points to page %d, outside the %d pages in use", what, id, w.hwm)
	}
	h := w.header(id)
	if got := order.Uint64(h); got != id {
		return nil, fmt.Sprintf("page %d of %s says it is page %d", id, what, got)
	}
	flags, count, overflow := order.Uint16(h[8:]), int(order.Uint16(h[10:])), uint64(order.Uint32(h[12:]))
	if flags != branchPageFlag && flags != leafPageFlag {
		return nil, fmt.Sprintf("page %d of %s is of type %#x, not a branch or leaf", id, what, flags)
	}
	if why := w.claim(id, overflow, what); why != "" {
		return nil, why
	}
	start := id * uint64(w.pageSize)
	p := w.data[start : start+(overflow+1)*uint64(w.pageSize)]
	if pageHeaderSize+count*elementSize > len(p) {
		return nil, fmt.Sprintf("page %d of %s claims %d elements, more than it holds", id, what, count)
	}
	// key is element i's key, checked to lie within the page.
	key := func(i int) ([]byte, bool) {
		at := pageHeaderSize + i*elementSize
		e := p[at : at+elementSize]
		var pos, ksize, vsize int
		if flags == branchPageFlag {
			pos, ksize = int(order.Uint32(e[0:])), int(order.Uint32(e[4:]))
		} else {
			pos, ksize, vsize = int(order.Uint32(e[4:])), int(order.Uint32(e[8:])), int(order.Uint32(e[12:]))
		}
		if at+pos+ksize+vsize > len(p) {
			return nil, false
		}
		return p[at+pos : at+pos+ksize], true
	}
	for i := range count {
		k, ok := key(i)
		if !ok {
			return nil, fmt.Sprintf("element %d of page %d of %s runs off the page", i, id, what)
		}
		if (lo != nil && bytes.Compare(k, lo) < 0) || (hi != nil && bytes.Compare(k, hi) >= 0) ||
			(last != nil && bytes.Compare(k, last) <= 0) {
			return nil, fmt.Sprintf("keys out of order on page %d of %s", id, what)
		}
		last = k
		e := p[pageHeaderSize+i*elementSize:]
		if flags == branchPageFlag {
			next := hi
			if i+1 < count {
				if next, ok = key(i + 1); !ok {
					return nil, fmt.Sprintf("element %d of page %d of %s runs off the page", i+1, id, what)
				}
			}
			sub, why := w.walk(order.Uint64(e[8:]), k, next, what)
			if why != "" {
				return nil, why
			}
			if sub != nil {
				last = sub
			}
			continue
		}
		if order.Uint32(e[0:])&bucketLeafFlag == 0 {
			continue
		}
		at := pageHeaderSize + i*elementSize + int(order.Uint32(e[4:])) + len(k)
		value := p[at : at+int(order.Uint32(e[12:]))]
		if len(value) < bucketHeader {
			return nil, fmt.Sprintf("bucket %q on page %d of %s has no header", k, id, what)
		}
		if root := order.Uint64(value); root != 0 { // 0: inline, on this page
			if _, why := w.walk(root, nil, nil, fmt.Sprintf("bucket %q", k)); why != "" {
				return nil, why
			}
		}
	}
	return last, ""
}
