package fetch

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand"
	"os/exec"
	"strings"
	"testing"
)

// fakeKernel is an ELF-looking blob with plenty of E8/E9 bytes (calls and
// jumps) for the x86 BCJ filter to rewrite.
func fakeKernel() []byte {
	rng := rand.New(rand.NewSource(1))
	k := []byte("\x7fELF\x02\x01\x01")
	for len(k) < 256<<10 {
		switch rng.Intn(4) {
		case 0:
			k = append(k, 0xe8, byte(rng.Intn(256)), byte(rng.Intn(256)), 0, 0)
		case 1:
			k = append(k, 0xe9, byte(rng.Intn(256)), 0xff, 0xff, 0xff)
		default:
			k = append(k, []byte("mov rax, rbx; ")...)
		}
	}
	return k
}

// fakeBzImage wraps an XZ payload the way a bzImage does: a setup header
// with "HdrS", setup_sects, payload_offset and payload_length, and the
// payload followed by the 4-byte uncompressed size.
func fakeBzImage(payload []byte, rawLen int, withHeader bool) []byte {
	const setupSects = 3
	img := make([]byte, (setupSects+1)*512+0x100)
	img[0x1f1] = setupSects
	if withHeader {
		copy(img[0x202:], "HdrS")
	}
	payload = binary.LittleEndian.AppendUint32(append([]byte(nil), payload...), uint32(rawLen))
	binary.LittleEndian.PutUint32(img[0x248:], 0x100)
	binary.LittleEndian.PutUint32(img[0x24c:], uint32(len(payload)))
	img = append(img, payload...)
	return append(img, make([]byte, 1000)...) // trailing data, as real images have
}

// xzCompress compresses data with the xz tool and the given filter options.
func xzCompress(t *testing.T, data []byte, filters ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("xz"); err != nil {
		t.Fatal("xz not found: run \"apt-get install xz-utils\"")
	}
	args := append([]string{"--format=xz", "--check=crc32", "--stdout"}, filters...)
	cmd := exec.Command("xz", args...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestExtractVmlinuxLZMA2(t *testing.T) {
	kernel := fakeKernel()
	payload := xzCompress(t, kernel, "--lzma2=dict=1MiB")
	for _, hdr := range []bool{true, false} {
		got, err := ExtractVmlinux(context.Background(), fakeBzImage(payload, len(kernel), hdr))
		if err != nil {
			t.Fatalf("header %v: %v", hdr, err)
		}
		if !bytes.Equal(got, kernel) {
			t.Errorf("header %v: wrong output", hdr)
		}
	}
}

// The kernel's own payload is compressed with xz --x86 (BCJ + LZMA2).
func TestExtractVmlinuxBCJ(t *testing.T) {
	ctx := context.Background()
	kernel := fakeKernel()
	payload := xzCompress(t, kernel, "--x86", "--lzma2=dict=1MiB")
	got, err := ExtractVmlinux(ctx, fakeBzImage(payload, len(kernel), true))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, kernel) {
		t.Fatal("BCJ-filtered payload decoded wrong")
	}
	// A corrupted payload fails the CRC32 check, not silently.
	bad := append([]byte(nil), payload...)
	bad[len(bad)/2] ^= 0x55
	if _, err := ExtractVmlinux(ctx, fakeBzImage(bad, len(kernel), true)); err == nil {
		t.Error("corrupt payload accepted")
	}
}

func TestExtractVmlinuxRejects(t *testing.T) {
	ctx := context.Background()
	if _, err := ExtractVmlinux(ctx, make([]byte, 4096)); err == nil || !strings.Contains(err.Error(), "XZ") {
		t.Errorf("no payload: %v", err)
	}
	payload := xzCompress(t, []byte("not a kernel at all"))
	if _, err := ExtractVmlinux(ctx, fakeBzImage(payload, 19, true)); err == nil || !strings.Contains(err.Error(), "ELF") {
		t.Errorf("non-ELF payload: %v", err)
	}
}
