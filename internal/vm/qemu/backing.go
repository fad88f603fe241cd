package qemu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Image is one file of a disk's backing chain.
type Image struct {
	Path   string // host path
	Format string // "qcow2" or "raw"
}

// maxChain bounds a backing chain (paddock makes at most three images).
const maxChain = 8

// BackingChain returns the images below the qcow2 image top, nearest
// first, reading each qcow2 header's backing file name (resolved against
// the image's directory, as QEMU does) and format. Paths come from paddock's
// own images only: the guest never writes an image header.
func BackingChain(top string) ([]Image, error) {
	var chain []Image
	path := top
	for range maxChain {
		name, format, err := qcow2Backing(path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if name == "" {
			return chain, nil
		}
		if !filepath.IsAbs(name) {
			name = filepath.Join(filepath.Dir(path), name)
		}
		if format == "" {
			format = "raw"
		}
		chain = append(chain, Image{Path: name, Format: format})
		if format != "qcow2" {
			return chain, nil
		}
		path = name
	}
	return nil, fmt.Errorf("%s: backing chain longer than %d", top, maxChain)
}

// qcow2 header fields and the backing format header extension.
const (
	qcow2Magic          = 0x514649fb
	qcow2ExtBackingFmt  = 0xe2792aca
	qcow2V2HeaderLength = 72
)

// qcow2Backing reads the backing file name and format of a qcow2 image.
func qcow2Backing(path string) (name, format string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	head := make([]byte, 104)
	if _, err := io.ReadFull(f, head); err != nil {
		return "", "", fmt.Errorf("qcow2 header: %w", err)
	}
	be := binary.BigEndian
	if be.Uint32(head) != qcow2Magic {
		return "", "", errors.New("not a qcow2 image")
	}
	version := be.Uint32(head[4:])
	off, size := be.Uint64(head[8:]), be.Uint32(head[16:])
	if off == 0 {
		return "", "", nil
	}
	if size > 1023 {
		return "", "", errors.New("qcow2 backing file name too long")
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, int64(off)); err != nil {
		return "", "", fmt.Errorf("qcow2 backing file name: %w", err)
	}
	extStart := int64(qcow2V2HeaderLength)
	if version >= 3 {
		extStart = int64(be.Uint32(head[100:]))
	}
	format, err = qcow2BackingFormat(f, extStart, int64(off))
	return string(b), format, err
}

// qcow2BackingFormat walks the header extensions from start (they end
// before the backing file name at limit) for the backing format.
func qcow2BackingFormat(f *os.File, start, limit int64) (string, error) {
	hdr := make([]byte, 8)
	for pos := start; pos+8 <= limit; {
		if _, err := f.ReadAt(hdr, pos); err != nil {
			return "", fmt.Errorf("qcow2 header extension: %w", err)
		}
		typ, n := binary.BigEndian.Uint32(hdr), int64(binary.BigEndian.Uint32(hdr[4:]))
		if typ == 0 {
			return "", nil
		}
		if pos+8+n > limit {
			return "", errors.New("qcow2 header extension past the header")
		}
		if typ == qcow2ExtBackingFmt {
			b := make([]byte, n)
			if _, err := f.ReadAt(b, pos+8); err != nil {
				return "", err
			}
			return string(b), nil
		}
		pos += 8 + (n+7)&^7
	}
	return "", nil
}
