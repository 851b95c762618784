package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// floor is the bare HTTP floor: an http.Server on loopback, in the bench's
// process, whose handler reads the body and makes it durable with one
// bbolt write. Its file options are store/bolt's (fsync on,
// NoFreelistSync, map freelist) and, like store/bolt, writes that arrive
// together share one transaction and one fsync. Nothing else: no routing,
// auth, parsing, logging, token, or outbox. Intake's throughput and
// latency against this tell what the bot's own work costs.
type floor struct {
	URL string

	db     *bbolt.DB
	srv    *http.Server
	writes chan *floorWrite
	done   chan struct{}
	seq    atomic.Uint64
}

type floorWrite struct {
	key, value []byte
	errc       chan error
}

const floorBucket = "tasks"

func startFloor(dir string) (*floor, error) {
	db, err := bbolt.Open(filepath.Join(dir, "floor.db"), 0o600, &bbolt.Options{
		Timeout:        time.Second,
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("floor: open: %w", err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte(floorBucket))
		return err
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("floor: create bucket: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("floor: listen: %w", err)
	}
	f := &floor{URL: "http://" + ln.Addr().String(), db: db, writes: make(chan *floorWrite), done: make(chan struct{})}
	f.srv = &http.Server{
		Handler:           http.HandlerFunc(f.serve),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	go f.commitLoop()
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

func (f *floor) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	wr := &floorWrite{key: strconv.AppendUint(nil, f.seq.Add(1), 10), value: body, errc: make(chan error, 1)}
	select {
	case f.writes <- wr:
	case <-r.Context().Done():
		return
	}
	if err := <-wr.errc; err != nil {
		http.Error(w, "write failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"pending"}`+"\n")
}

// commitLoop writes whatever waits in one transaction (store/bolt's group
// commit, at most 256 writes each).
func (f *floor) commitLoop() {
	for {
		var batch []*floorWrite
		select {
		case wr := <-f.writes:
			batch = append(batch, wr)
		case <-f.done:
			return
		}
	more:
		for len(batch) < 256 {
			select {
			case wr := <-f.writes:
				batch = append(batch, wr)
			default:
				break more
			}
		}
		err := f.db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket([]byte(floorBucket))
			for _, wr := range batch {
				if err := b.Put(wr.key, wr.value); err != nil {
					return err
				}
			}
			return nil
		})
		for _, wr := range batch {
			wr.errc <- err
		}
	}
}

// close stops the server and the file. It does not wait for a graceful
// shutdown: the load has been answered by then, and Shutdown would wait
// seconds for a connection the client dialed but never used.
func (f *floor) close() error {
	err := f.srv.Close()
	close(f.done)
	return errors.Join(err, f.db.Close())
}
