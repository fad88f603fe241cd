package fetch

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/paddock-dev/paddock/internal/template"
)

// ExtractVmlinux returns the uncompressed kernel (an ELF vmlinux, which
// QEMU's microvm boots through the PVH entry) from a bzImage whose payload
// is XZ-compressed, as Debian's vmlinuz is. The payload is found through
// the boot protocol header (payload_offset, payload_length), or else by the
// first XZ magic in the image.
//
// The payload is decoded by xz-utils: the kernel compresses it with the x86
// BCJ filter in front of LZMA2, which the Go xz decoders do not support.
func ExtractVmlinux(ctx context.Context, bzImage []byte) ([]byte, error) {
	stream, err := xzPayload(bzImage)
	if err != nil {
		return nil, err
	}
	out, err := unxz(ctx, stream)
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

// unxz decodes the first XZ stream in data with the xz tool, verifying its
// checks. Data after the stream (a bzImage payload ends with the 4-byte
// uncompressed size) is ignored.
func unxz(ctx context.Context, data []byte) ([]byte, error) {
	path, err := template.ToolPath("xz")
	if err != nil {
		return nil, fmt.Errorf("xz not found: %s", template.InstallHint("xz"))
	}
	cmd := exec.CommandContext(ctx, path, "--decompress", "--stdout", "--single-stream")
	cmd.Stdin = bytes.NewReader(data)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("xz: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}
