package template

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// ExtractVmlinux returns the uncompressed kernel (an ELF vmlinux, which
// QEMU's microvm boots through the PVH entry) from a bzImage whose payload
// is XZ-compressed, as Debian's vmlinuz is. The payload is found through
// the boot protocol header (payload_offset, payload_length), or else by the
// first XZ magic in the image.
func ExtractVmlinux(bzImage []byte) ([]byte, error) {
	stream, err := xzPayload(bzImage)
	if err != nil {
		return nil, err
	}
	out, err := decodeXZ(stream)
	if err != nil {
		return nil, fmt.Errorf("decompress kernel: %w", err)
	}
	if !bytes.HasPrefix(out, []byte("\x7fELF")) {
		return nil, errors.New("decompressed kernel is not an ELF file")
	}
	return out, nil
}

var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}

func xzPayload(img []byte) ([]byte, error) {
	// Linux boot protocol: "HdrS" at 0x202, setup_sects at 0x1f1, and the
	// compressed payload at (setup_sects+1)*512 + payload_offset.
	if len(img) > 0x250 && string(img[0x202:0x206]) == "HdrS" {
		setup := int(img[0x1f1])
		if setup == 0 {
			setup = 4
		}
		off := (setup+1)*512 + int(binary.LittleEndian.Uint32(img[0x248:]))
		n := int(binary.LittleEndian.Uint32(img[0x24c:]))
		if off >= 0 && n > 0 && off+n <= len(img) && bytes.HasPrefix(img[off:], xzMagic) {
			return img[off : off+n], nil
		}
	}
	i := bytes.Index(img, xzMagic)
	if i < 0 {
		return nil, errors.New("no XZ-compressed payload in the kernel image")
	}
	return img[i:], nil
}

// XZ filter IDs (xz file format, section 5.3).
const (
	xzFilterX86   = 0x04
	xzFilterLZMA2 = 0x21
)

// decodeXZ decodes the first stream of an .xz file whose blocks use LZMA2,
// optionally after the x86 BCJ filter, which ulikunitz/xz does not support
// and the kernel's xz_wrap.sh uses. Data after the stream (the bzImage
// payload ends with the 4-byte uncompressed size) is ignored. Block checks
// of type CRC32 are verified.
func decodeXZ(data []byte) ([]byte, error) {
	if len(data) < 12 || !bytes.HasPrefix(data, xzMagic) {
		return nil, errors.New("not an XZ stream")
	}
	if crc32.ChecksumIEEE(data[6:8]) != binary.LittleEndian.Uint32(data[8:12]) {
		return nil, errors.New("XZ stream header CRC mismatch")
	}
	check := data[7] & 0x0f
	checkSize := map[byte]int{0: 0, 1: 4, 4: 8, 10: 32}[check]
	if check != 0 && checkSize == 0 {
		return nil, fmt.Errorf("XZ check type %d is not supported", check)
	}
	r := bytes.NewReader(data[12:])
	var out []byte
	for {
		blk, err := decodeXZBlock(r, check, checkSize)
		if err != nil {
			return nil, err
		}
		if blk == nil { // the index: no more blocks
			return out, nil
		}
		out = append(out, blk...)
	}
}

// decodeXZBlock decodes one block at r, or returns nil, nil at the index.
func decodeXZBlock(r *bytes.Reader, check byte, checkSize int) ([]byte, error) {
	start := r.Size() - int64(r.Len())
	b, err := r.ReadByte()
	if err != nil {
		return nil, fmt.Errorf("XZ block header: %w", err)
	}
	if b == 0 {
		return nil, nil
	}
	hsize := (int(b) + 1) * 4
	hdr := make([]byte, hsize)
	hdr[0] = b
	if _, err := io.ReadFull(r, hdr[1:]); err != nil {
		return nil, fmt.Errorf("XZ block header: %w", err)
	}
	if crc32.ChecksumIEEE(hdr[:hsize-4]) != binary.LittleEndian.Uint32(hdr[hsize-4:]) {
		return nil, errors.New("XZ block header CRC mismatch")
	}
	hr := bytes.NewReader(hdr[2 : hsize-4])
	flags := hdr[1]
	if flags&0x40 != 0 { // compressed size present
		if _, err := binary.ReadUvarint(hr); err != nil {
			return nil, err
		}
	}
	if flags&0x80 != 0 { // uncompressed size present
		if _, err := binary.ReadUvarint(hr); err != nil {
			return nil, err
		}
	}
	var x86 bool
	var x86Start uint32
	dictCap := -1
	for i := 0; i <= int(flags&0x03); i++ {
		id, err1 := binary.ReadUvarint(hr)
		n, err2 := binary.ReadUvarint(hr)
		if err1 != nil || err2 != nil || n > uint64(hr.Len()) {
			return nil, errors.New("XZ block header: bad filter flags")
		}
		props := make([]byte, n)
		io.ReadFull(hr, props)
		switch {
		case id == xzFilterX86 && i == 0 && (n == 0 || n == 4):
			x86 = true
			if n == 4 {
				x86Start = binary.LittleEndian.Uint32(props)
			}
		case id == xzFilterLZMA2 && i == int(flags&0x03) && n == 1:
			dictCap, err = lzma2DictCap(props[0])
			if err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("XZ filter %#x is not supported (only x86 BCJ and LZMA2)", id)
		}
	}
	if dictCap < 0 {
		return nil, errors.New("XZ block has no LZMA2 filter")
	}
	out, err := decodeLZMA2(r, dictCap)
	if err != nil {
		return nil, err
	}
	if x86 {
		bcjX86Decode(out, x86Start)
	}
	// Block padding to a multiple of four, then the check.
	consumed := r.Size() - int64(r.Len()) - start
	if _, err := r.Seek((4-consumed%4)%4, io.SeekCurrent); err != nil {
		return nil, err
	}
	sum := make([]byte, checkSize)
	if _, err := io.ReadFull(r, sum); err != nil {
		return nil, fmt.Errorf("XZ block check: %w", err)
	}
	if check == 1 && crc32.ChecksumIEEE(out) != binary.LittleEndian.Uint32(sum) {
		return nil, errors.New("XZ block CRC32 mismatch")
	}
	return out, nil
}

// lzma2DictCap decodes the LZMA2 filter's dictionary size byte.
func lzma2DictCap(p byte) (int, error) {
	bits := int(p & 0x3f)
	if bits > 40 {
		return 0, fmt.Errorf("bad LZMA2 dictionary size %#x", p)
	}
	if bits == 40 {
		return 1<<32 - 1, nil
	}
	return (2 | bits&1) << (bits/2 + 11), nil
}
