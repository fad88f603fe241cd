package oci

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// tarOf builds a tar stream of hdrs; a regular file's body is its name.
func tarOf(t *testing.T, hdrs ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(h.Name))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(h.Name))
		}
	}
	tw.Close()
	return buf.Bytes()
}

// newStaging makes a staging folder beside an "outside" folder that holds
// one host file.
func newStaging(t *testing.T) (staging, outside string) {
	t.Helper()
	dir := t.TempDir()
	staging, outside = filepath.Join(dir, "staging"), filepath.Join(dir, "outside")
	os.Mkdir(staging, 0o700)
	os.Mkdir(outside, 0o700)
	os.WriteFile(filepath.Join(outside, "hostfile"), []byte("host"), 0o600)
	return staging, outside
}

// unpack extracts stream into a new staging folder (newStaging).
func unpack(t *testing.T, stream io.Reader) (staging, outside string, x *extractor, err error) {
	t.Helper()
	staging, outside = newStaging(t)
	x, err = newExtractor(staging)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.close)
	return staging, outside, x, x.extract(stream)
}

// checkOutside fails if anything but hostfile appeared outside staging, or
// hostfile gained a link or changed.
func checkOutside(t *testing.T, outside string) {
	t.Helper()
	entries, _ := os.ReadDir(outside)
	if len(entries) != 1 {
		t.Errorf("outside the staging folder: %v", entries)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(outside, "hostfile"), &st); err != nil || st.Nlink != 1 {
		t.Errorf("host file: nlink %d, %v", st.Nlink, err)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "hostfile")); string(b) != "host" {
		t.Errorf("host file now holds %q", b)
	}
}

func TestExtractStaysInsideTheRoot(t *testing.T) {
	escapes := []struct {
		name   string
		hdrs   func(outside string) []tar.Header
		inside []string // paths that exist under staging afterwards
	}{
		{"dot-dot names", func(string) []tar.Header {
			return []tar.Header{{Typeflag: tar.TypeReg, Name: "../../../outside/dotdot", Mode: 0o644}}
		}, []string{"outside/dotdot"}},
		{"absolute names", func(o string) []tar.Header {
			return []tar.Header{{Typeflag: tar.TypeReg, Name: o + "/abs", Mode: 0o644}}
		}, nil},
		{"symlink then a file through it", func(o string) []tar.Header {
			return []tar.Header{
				{Typeflag: tar.TypeSymlink, Name: "link", Linkname: o, Mode: 0o777},
				{Typeflag: tar.TypeReg, Name: "link/through", Mode: 0o644},
			}
		}, nil},
		{"relative symlink out, then a folder and file through it", func(string) []tar.Header {
			return []tar.Header{
				{Typeflag: tar.TypeSymlink, Name: "up", Linkname: "../../../../outside", Mode: 0o777},
				{Typeflag: tar.TypeDir, Name: "up/newdir/", Mode: 0o755},
				{Typeflag: tar.TypeReg, Name: "up/newdir/f", Mode: 0o644},
			}
		}, nil},
		{"symlink replaced by a file keeps the file inside", func(o string) []tar.Header {
			return []tar.Header{
				{Typeflag: tar.TypeSymlink, Name: "hostfile", Linkname: o + "/hostfile", Mode: 0o777},
				{Typeflag: tar.TypeReg, Name: "hostfile", Mode: 0o644},
			}
		}, []string{"hostfile"}},
		{"hard link to a host file", func(o string) []tar.Header {
			return []tar.Header{
				{Typeflag: tar.TypeSymlink, Name: "l", Linkname: o, Mode: 0o777},
				{Typeflag: tar.TypeLink, Name: "hard", Linkname: "l/hostfile"},
			}
		}, nil},
		{"hard link by a dot-dot name", func(string) []tar.Header {
			return []tar.Header{{Typeflag: tar.TypeLink, Name: "hard2", Linkname: "../outside/hostfile"}}
		}, nil},
	}
	for _, c := range escapes {
		t.Run(c.name, func(t *testing.T) {
			staging, out := newStaging(t)
			x, err := newExtractor(staging)
			if err != nil {
				t.Fatal(err)
			}
			defer x.close()
			// An escape may be refused with an error or kept inside;
			// either way nothing happens outside.
			err = x.extract(bytes.NewReader(tarOf(t, c.hdrs(out)...)))
			t.Logf("extract: %v", err)
			checkOutside(t, out)
			for _, p := range c.inside {
				if _, err := os.Lstat(filepath.Join(staging, p)); err != nil {
					t.Errorf("%s not made inside the staging folder: %v", p, err)
				}
			}
		})
	}
}

// Set-id bits, owners, device nodes and FIFOs are recorded for the image,
// never made on the host.
func TestExtractRecordsPrivilegedFiles(t *testing.T) {
	stream := tarOf(t,
		tar.Header{Typeflag: tar.TypeDir, Name: "bin/", Mode: 0o755},
		tar.Header{Typeflag: tar.TypeReg, Name: "bin/su", Mode: 0o4755, PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}},
		tar.Header{Typeflag: tar.TypeReg, Name: "bin/wall", Mode: 0o2755, Uid: 0, Gid: 5},
		tar.Header{Typeflag: tar.TypeDir, Name: "var/mail/", Mode: 0o2775, Gid: 8},
		tar.Header{Typeflag: tar.TypeBlock, Name: "dev/sda", Mode: 0o660, Devmajor: 8, Gid: 6},
		tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3},
		tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600},
	)
	staging, outside, x, err := unpack(t, bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	checkOutside(t, outside)
	for p, want := range map[string]os.FileMode{"bin/su": 0o755, "bin/wall": 0o755, "var/mail": os.ModeDir | 0o775} {
		st, err := os.Lstat(filepath.Join(staging, p))
		if err != nil || st.Mode() != want {
			t.Errorf("%s on the host: %v, %v; want %v", p, st.Mode(), err, want)
		}
	}
	for _, p := range []string{"dev/sda", "dev/null", "run/fifo"} {
		if _, err := os.Lstat(filepath.Join(staging, p)); err == nil {
			t.Errorf("%s was made on the host", p)
		}
	}
	f := x.fixes
	if f.Modes["bin/su"] != syscall.S_IFREG|0o4755 || f.Modes["bin/wall"] != syscall.S_IFREG|0o2755 || f.Modes["var/mail"] != syscall.S_IFDIR|0o2775 {
		t.Errorf("modes recorded: %v", f.Modes)
	}
	if string(f.Caps["bin/su"]) != "\x01\x00\x00\x02" {
		t.Errorf("capability recorded: %q", f.Caps["bin/su"])
	}
	if n := f.Nodes["dev/sda"]; n.Kind != 'b' || n.Major != 8 || n.Mode != 0o660 || f.Owners["dev/sda"] != [2]int{0, 6} {
		t.Errorf("dev/sda recorded as %+v, owner %v", n, f.Owners["dev/sda"])
	}
	if n := f.Nodes["run/fifo"]; n.Kind != 'p' {
		t.Errorf("run/fifo recorded as %+v", n)
	}
	if f.Owners["bin/wall"] != [2]int{0, 5} || f.Owners["var/mail"] != [2]int{0, 8} {
		t.Errorf("owners recorded: %v", f.Owners)
	}
}

func layerOf(t *testing.T, b []byte) v1.Layer {
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Whiteouts in an upper layer remove only what the lower layers had, and
// what they remove is not recorded for the image either.
func TestExtractWhiteoutsAcrossLayers(t *testing.T) {
	lower := tarOf(t,
		tar.Header{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o755},
		tar.Header{Typeflag: tar.TypeReg, Name: "d/gone", Mode: 0o644},
		tar.Header{Typeflag: tar.TypeReg, Name: "d/kept", Mode: 0o644},
		tar.Header{Typeflag: tar.TypeReg, Name: "suid", Mode: 0o4755},
		tar.Header{Typeflag: tar.TypeBlock, Name: "node", Mode: 0o600, Devmajor: 8},
	)
	upper := tarOf(t,
		tar.Header{Typeflag: tar.TypeReg, Name: "d/.wh.gone", Mode: 0o644},
		tar.Header{Typeflag: tar.TypeReg, Name: ".wh.suid", Mode: 0o644},
		tar.Header{Typeflag: tar.TypeReg, Name: "node", Mode: 0o644}, // a file replaces the node
	)
	img, err := mutate.AppendLayers(empty.Image, layerOf(t, lower), layerOf(t, upper))
	if err != nil {
		t.Fatal(err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	staging, outside, x, err := unpack(t, rc)
	if err != nil {
		t.Fatal(err)
	}
	checkOutside(t, outside)
	if _, err := os.Lstat(filepath.Join(staging, "d", "gone")); err == nil {
		t.Error("d/gone survived its whiteout")
	}
	if _, err := os.Lstat(filepath.Join(staging, "d", "kept")); err != nil {
		t.Error("d/kept was removed")
	}
	if _, ok := x.fixes.Modes["suid"]; ok {
		t.Error("a whited-out setuid file is still recorded for the image")
	}
	if _, ok := x.fixes.Nodes["node"]; ok {
		t.Error("a device node replaced by a file is still recorded")
	}
}

// A layer with a crafted whiteout that points outside the root fails the
// import: not a silently shorter file system.
func TestExtractRefusesCraftedWhiteouts(t *testing.T) {
	for _, name := range []string{"../.wh.outside", "d/../../.wh.hostfile"} {
		lower := tarOf(t, tar.Header{Typeflag: tar.TypeReg, Name: "kept", Mode: 0o644})
		upper := tarOf(t, tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644})
		img, err := mutate.AppendLayers(empty.Image, layerOf(t, lower), layerOf(t, upper))
		if err != nil {
			t.Fatal(err)
		}
		rc := mutate.Extract(img)
		_, outside, _, err := unpack(t, rc)
		rc.Close()
		if err == nil || !strings.Contains(err.Error(), "unsafe tar path") {
			t.Errorf("%s: extract = %v, want the unsafe path refused", name, err)
		}
		checkOutside(t, outside)
	}
}

// A symlink out of the root in one layer and entries through it in the
// next (absolute and relative; a file, a folder, a file in it) stay inside
// the staging folder or are refused: the flattened image and the layers
// one after the other alike.
func TestExtractSymlinkThenFileAcrossLayers(t *testing.T) {
	for _, abs := range []bool{true, false} {
		staging, outside := newStaging(t)
		target := outside
		if !abs {
			target = "../../../../../../" + strings.TrimPrefix(outside, "/")
		}
		lower := tarOf(t, tar.Header{Typeflag: tar.TypeSymlink, Name: "link", Linkname: target, Mode: 0o777})
		upper := tarOf(t,
			tar.Header{Typeflag: tar.TypeReg, Name: "link/through", Mode: 0o644},
			tar.Header{Typeflag: tar.TypeDir, Name: "link/dir/", Mode: 0o755},
			tar.Header{Typeflag: tar.TypeReg, Name: "link/dir/f", Mode: 0o644},
		)
		img, err := mutate.AppendLayers(empty.Image, layerOf(t, lower), layerOf(t, upper))
		if err != nil {
			t.Fatal(err)
		}
		rc := mutate.Extract(img)
		x, err := newExtractor(staging)
		if err != nil {
			t.Fatal(err)
		}
		err = x.extract(rc)
		rc.Close()
		x.close()
		t.Logf("flattened, absolute %v: %v", abs, err)
		checkOutside(t, outside)
		if err == nil {
			if st, err := os.Lstat(filepath.Join(staging, "link", "through")); err != nil || !st.Mode().IsRegular() {
				t.Errorf("flattened: link/through is not a file inside the staging folder: %v", err)
			}
		}

		staging, outside = newStaging(t)
		x, err = newExtractor(staging)
		if err != nil {
			t.Fatal(err)
		}
		for i, layer := range [][]byte{lower, upper} {
			err := x.extract(bytes.NewReader(layer))
			t.Logf("layer %d, absolute %v: %v", i, abs, err)
		}
		x.close()
		checkOutside(t, outside)
	}
}

// TestExtractHardLink: a hard link in another folder is the same file as
// its target.
func TestExtractHardLink(t *testing.T) {
	stream := bytes.NewReader(tarOf(t,
		tar.Header{Typeflag: tar.TypeDir, Name: "a/", Mode: 0o755},
		tar.Header{Typeflag: tar.TypeReg, Name: "a/f", Mode: 0o644},
		tar.Header{Typeflag: tar.TypeDir, Name: "b/", Mode: 0o755},
		tar.Header{Typeflag: tar.TypeLink, Name: "b/g", Linkname: "a/f"},
	))
	staging, outside, _, err := unpack(t, stream)
	if err != nil {
		t.Fatal(err)
	}
	checkOutside(t, outside)
	var f, g syscall.Stat_t
	if err := syscall.Stat(filepath.Join(staging, "a", "f"), &f); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(filepath.Join(staging, "b", "g"), &g); err != nil || g.Ino != f.Ino || f.Nlink != 2 {
		t.Errorf("b/g: inode %d (a/f %d, nlink %d), %v", g.Ino, f.Ino, f.Nlink, err)
	}
}
