package config

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// debounce is how long the file must stay quiet before it is reloaded:
// editors write, truncate and rename in bursts, and a reload in the middle of
// one would see half a file.
const debounce = 100 * time.Millisecond

// Watch reloads the configuration (the file at path plus the environment)
// whenever the file changes, until ctx is done; it blocks until then. A new
// configuration that loads and validates is passed to apply; one that does
// not is passed to reject with the error (a *ValidationError for invalid
// content), and the caller keeps the configuration it has. A change that
// leaves the file's content as it was when Watch started or last reloaded
// calls neither. apply and reject are called one at a time from Watch's
// goroutine, so no call is under way once Watch has returned.
//
// Watch watches the file's directory, so editors that replace the file
// (write a new one and rename it over the old) and Kubernetes ConfigMap
// volumes (a symlink swap) are seen too. If the watch cannot be set up,
// Watch calls reject with the error and returns. A path of "" watches
// nothing and returns at once.
//
// viper's own WatchConfig is not used because it cannot be stopped.
func Watch(ctx context.Context, path string, apply func(*Config), reject func(problems error)) {
	watch(ctx, path, apply, reject, nil)
}

// watch is Watch that calls ready, if not nil, once the watch is in place:
// tests change the file only after that.
func watch(ctx context.Context, path string, apply func(*Config), reject func(error), ready func()) {
	if path == "" {
		return
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		reject(fmt.Errorf("config: watch %s: %w", path, err))
		return
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		reject(fmt.Errorf("config: watch %s: %w", path, err))
		return
	}
	defer func() { _ = w.Close() }()
	if err := w.Add(filepath.Dir(abs)); err != nil {
		reject(fmt.Errorf("config: watch %s: %w", path, err))
		return
	}
	fw := &fileWatch{path: path, abs: abs, apply: apply, reject: reject}
	fw.real, _ = filepath.EvalSymlinks(abs)
	// A file that is a symlink into another directory changes there.
	if fw.real != "" && filepath.Dir(fw.real) != filepath.Dir(abs) {
		_ = w.Add(filepath.Dir(fw.real))
	}
	fw.last, err = readFile(path)
	fw.lastOK = err == nil
	if ready != nil {
		ready()
	}
	fw.run(ctx, w)
}

// fileWatch is the state of one Watch, owned by its goroutine.
type fileWatch struct {
	path, abs string
	// real is where abs's symlinks led last time.
	real   string
	last   []byte
	lastOK bool
	apply  func(*Config)
	reject func(error)
}

func (fw *fileWatch) run(ctx context.Context, w *fsnotify.Watcher) {
	timer := time.NewTimer(debounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if fw.concerns(ev) {
				timer.Reset(debounce)
			}
		case _, ok := <-w.Errors:
			if !ok {
				return
			}
			// Events may have been lost (a queue overflow): look anyway.
			timer.Reset(debounce)
		case <-timer.C:
			fw.reload(ctx)
		}
	}
}

// concerns reports whether ev may have changed the file: an event on the
// file's name, or any event after which its symlinks lead elsewhere.
func (fw *fileWatch) concerns(ev fsnotify.Event) bool {
	name := filepath.Clean(ev.Name)
	if name == fw.abs || name == fw.real {
		return true
	}
	real, _ := filepath.EvalSymlinks(fw.abs)
	if real != fw.real {
		fw.real = real
		return true
	}
	return false
}

func (fw *fileWatch) reload(ctx context.Context) {
	data, err := readFile(fw.path)
	if err == nil && fw.lastOK && bytes.Equal(data, fw.last) {
		return
	}
	if err != nil && !fw.lastOK {
		// Still unreadable: it was reported already.
		return
	}
	fw.last, fw.lastOK = data, err == nil

	var c *Config
	if err == nil {
		c, err = loadBytes(fw.path, data)
	}
	if err == nil {
		err = c.Validate()
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		fw.reject(err)
		return
	}
	fw.apply(c)
}
