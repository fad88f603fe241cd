package e2e

import (
	"archive/tar"
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Images for the tests are made here, from the host's busybox-static
// binary (make deps installs it): nothing is downloaded.

// imageConfig is what testImage puts in the image's config.
var imageConfig = v1.Config{
	Env:        []string{"PATH=/usr/local/bin:/bin", "GREETING=from-image"},
	WorkingDir: "/srv/app",
	Cmd:        []string{"sh"},
}

// testImage is a linux/amd64 image: busybox with its applet links in /bin,
// /srv/app, and padding bytes of incompressible data in /pad (0 for none).
func testImage(t testing.TB, padding int64) v1.Image {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox-static is needed (apt-get install busybox-static): %v", err)
	}
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mod := time.Unix(1700000000, 0)
	dir := func(n string) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: n + "/", Mode: 0o755, ModTime: mod})
	}
	file := func(n string, mode int64, data []byte) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: mode, Size: int64(len(data)), ModTime: mod})
		tw.Write(data)
	}
	dir("bin")
	file("bin/busybox", 0o755, bb)
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", ModTime: mod})
	}
	dir("srv")
	dir("srv/app")
	file("srv/app/hello.txt", 0o644, []byte("hello from the image\n"))
	dir("etc")
	file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	file("etc/group", 0o644, []byte("root:x:0:\n"))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layers := []v1.Layer{tarLayer(t, buf.Bytes())}
	if padding > 0 {
		layers = append(layers, padLayer(t, padding))
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", "amd64", imageConfig
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func tarLayer(t testing.TB, data []byte) v1.Layer {
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// padLayer is one file of n pseudo-random bytes (a fixed seed, so the
// image and its digest are the same every run).
func padLayer(t testing.TB, n int64) v1.Layer {
	data := make([]byte, n)
	x := uint64(0x9e3779b97f4a7c15)
	for i := range data {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		data[i] = byte(x)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "pad", Mode: 0o644, Size: n, ModTime: time.Unix(1700000000, 0)})
	tw.Write(data)
	tw.Close()
	return tarLayer(t, buf.Bytes())
}

// writeArchive writes img as a docker-archive (docker save format) tagged tag.
func writeArchive(t testing.TB, img v1.Image, tag, path string) {
	t.Helper()
	ref, err := name.NewTag(tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(path, ref, img); err != nil {
		t.Fatal(err)
	}
}

// writeLayout writes img as an OCI image layout in dir.
func writeLayout(t testing.TB, img v1.Image, dir string) {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
}

// serveRegistry runs an in-process registry on 127.0.0.1 holding img as
// test/app:1 and returns its host:port.
// serveRegistry serves img as test/app:1 from a registry on loopback and
// returns its host:port and a func that shuts it down.
func serveRegistry(t testing.TB, img v1.Image) (string, func()) {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	ref, err := name.ParseReference(host + "/test/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	return host, srv.Close
}

// importEnv is an env whose templates directory is its own (imports land
// there, not in the shared one), with the kernel cache shared.
func importEnv(t testing.TB) *env {
	e := newEnv(t)
	tdir := filepath.Join(e.home, "templates")
	if err := os.Remove(tdir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(tdir, 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

// noTemplate fails unless nothing of template n is in e's templates dir.
func (e *env) noTemplate(n string) {
	e.t.Helper()
	entries, _ := os.ReadDir(filepath.Join(e.home, "templates"))
	for _, en := range entries {
		if en.Name() == n || strings.HasPrefix(en.Name(), "."+n+".build") || strings.HasPrefix(en.Name(), "img-") {
			e.t.Errorf("a failed import left %s behind", en.Name())
		}
	}
}

// One import per source kind, a sandbox from each: the image's command
// runs with its Env and WorkingDir as defaults.
func TestImageImport(t *testing.T) {
	e := importEnv(t)
	img := testImage(t, 0)
	archive := filepath.Join(e.home, "img.tar")
	writeArchive(t, img, "my-image:1", archive)
	oci := filepath.Join(e.home, "oci")
	writeLayout(t, img, oci)
	reg, stopRegistry := serveRegistry(t, img)

	sources := []struct{ name, source string }{
		{"from-archive", "docker-archive:" + archive},
		{"from-oci", "oci:" + oci},
		{"from-registry", reg + "/test/app:1"},
	}
	for _, s := range sources {
		t.Run(s.name, func(t *testing.T) {
			e := e.with(t)
			if out := e.ok("template", "import", s.name, s.source); strings.TrimSpace(out) != s.name {
				t.Fatalf("import printed %q", out)
			}
			e.ok("create", "--name", s.name, "--template", s.name, "--memory", "512M", "--cpus", "1", "--workspace", e.ws)
			out := e.ok("exec", s.name, "--", "sh", "-c", "echo $GREETING; pwd; id -u; cat hello.txt; echo $PATH")
			want := "from-image\n/srv/app\n0\nhello from the image\n/usr/local/bin:/bin\n"
			if out != want {
				t.Fatalf("exec printed %q, want %q", out, want)
			}
			// The workspace is there too, and -w / -u override the image.
			if out := e.ok("exec", "-u", "agent", "-w", e.ws, s.name, "--", "sh", "-c", "id -un; pwd"); out != "agent\n"+e.ws+"\n" {
				t.Fatalf("exec -u agent -w WS printed %q", out)
			}
			e.ok("rm", "-f", s.name)
		})
	}
	t.Run("import again is a no-op, template ls shows it", func(t *testing.T) {
		e := e.with(t)
		_, errs, code := e.run("template", "import", "from-archive", "docker-archive:"+archive)
		if code != 0 || !strings.Contains(errs, "up to date") {
			t.Fatalf("second import: code %d, stderr %q", code, errs)
		}
		ls := e.ok("template", "ls")
		if !strings.Contains(ls, "from-oci") || !strings.Contains(ls, "from-registry") {
			t.Fatalf("template ls:\n%s", ls)
		}
	})
	t.Run("create --image imports once, by digest", func(t *testing.T) {
		e := e.with(t)
		ref := reg + "/test/app:1"
		e.ok("create", "--name", "byref", "--image", ref, "--memory", "512M", "--cpus", "1", "--workspace", e.ws)
		if out := e.ok("exec", "byref", "--", "sh", "-c", "echo $GREETING"); out != "from-image\n" {
			t.Fatalf("got %q", out)
		}
		_, errs, code := e.run("create", "--name", "byref2", "--image", ref, "--memory", "512M", "--cpus", "1", "--workspace", e.ws)
		if code != 0 || !strings.Contains(errs, "up to date") {
			t.Fatalf("second create --image: code %d, stderr %q", code, errs)
		}
		e.ok("rm", "-f", "byref", "byref2")
	})
	t.Run("create --image offline uses the last import of that reference", func(t *testing.T) {
		e := e.with(t)
		stopRegistry()
		ref := reg + "/test/app:1"
		_, errs, code := e.run("create", "--name", "offline", "--image", ref, "--memory", "512M", "--cpus", "1", "--workspace", e.ws)
		if code != 0 || !strings.Contains(errs, "cannot be reached") || !strings.Contains(errs, "img-") {
			t.Fatalf("create --image with the registry down: code %d, stderr %q", code, errs)
		}
		if out := e.ok("exec", "offline", "--", "sh", "-c", "echo $GREETING"); out != "from-image\n" {
			t.Fatalf("got %q", out)
		}
		e.ok("rm", "-f", "offline")
		// A reference never imported has nothing to fall back on.
		_, errs, code = e.run("create", "--name", "never", "--image", reg+"/test/app:2", "--memory", "512M", "--cpus", "1", "--workspace", e.ws)
		if code == 0 || !strings.Contains(errs, "test/app:2") || strings.Contains(errs, "cannot be reached, so using") {
			t.Fatalf("create --image of a never imported reference, registry down: code %d, stderr %q", code, errs)
		}
		if _, _, code := e.run("inspect", "never"); code == 0 {
			t.Fatal("the failed create left a sandbox")
		}
	})
}

// A broken tarball, a missing tag and a refusing registry fail with a
// message that says so, and leave no template behind.
func TestImageImportErrors(t *testing.T) {
	e := importEnv(t)
	broken := filepath.Join(e.home, "broken.tar")
	os.WriteFile(broken, []byte("this is not a tar file at all"), 0o644)
	reg, _ := serveRegistry(t, testImage(t, 0))
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`)
	}))
	defer refuse.Close()
	cases := []struct {
		name, source, want string
	}{
		{"broken", "docker-archive:" + broken, "not a readable image tarball"},
		{"missing", "docker-archive:" + filepath.Join(e.home, "nope.tar"), "no such file"},
		{"notag", reg + "/test/app:nope", "not found in registry"},
		{"norepo", reg + "/test/other:1", "not found in registry"},
		{"refused", strings.TrimPrefix(refuse.URL, "http://") + "/test/app:1", "refused"},
		{"badoci", "oci:" + e.home, "oci layout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := e.with(t)
			_, errs, code := e.run("template", "import", c.name, c.source)
			if code == 0 || !strings.Contains(errs, c.want) {
				t.Fatalf("import %s: code %d, stderr %q; want an error with %q", c.source, code, errs, c.want)
			}
			e.noTemplate(c.name)
		})
	}
	t.Run("create --image with a missing tag creates nothing", func(t *testing.T) {
		e := e.with(t)
		_, errs, code := e.run("create", "--name", "x", "--image", reg+"/test/app:nope", "--workspace", e.ws)
		if code == 0 || !strings.Contains(errs, "not found") {
			t.Fatalf("code %d stderr %q", code, errs)
		}
		if out := e.ok("ls", "--json"); strings.TrimSpace(out) != "[]" {
			t.Fatalf("ls after a failed create: %s", out)
		}
		e.noTemplate("x")
	})
}
