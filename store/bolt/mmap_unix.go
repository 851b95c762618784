//go:build unix

package bolt

import (
	"os"
	"syscall"
)

// mapFile maps the first size bytes of f read-only, as bbolt does, so that
// checking a large file costs no copy.
func mapFile(f *os.File, size int64) (data []byte, unmap func(), err error) {
	data, err = syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return data, func() { _ = syscall.Munmap(data) }, nil
}
