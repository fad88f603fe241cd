package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// BenchmarkImages measures image import, docker run in a sandbox and the
// disk use of many sandboxes of one template, and writes
// docs/bench/images.json:
//
//	go test ./test/e2e -run XXX -bench Images -benchtime 1x
//
// Needs root and the debian template.
func BenchmarkImages(b *testing.B) {
	res := map[string]any{"when": time.Now().UTC().Format(time.RFC3339)}

	// 1. template import of a 100 MiB image from a docker archive.
	{
		e := importEnv(b)
		archive := filepath.Join(e.home, "big.tar")
		writeArchive(b, testImage(b, 100<<20), "big:1", archive)
		var runs []float64
		for i := 0; i < 3; i++ {
			t0 := time.Now()
			e.ok("template", "import", "--force", "big", "docker-archive:"+archive)
			runs = append(runs, time.Since(t0).Seconds())
		}
		res["import_100mib_seconds"] = summary(runs)
	}
	// 2. docker run --rm of a small image, and 3. disk use of 10 sandboxes.
	{
		e := newEnv(b, "debian")
		writeArchive(b, testImage(b, 0), "my-image:1", filepath.Join(e.ws, "img.tar"))
		e.ok("create", "--name", "d0", "--memory", "1G", "--workspace", e.ws)
		e.ok("exec", "d0", "--", "docker", "load", "-i", "img.tar")
		var runs []float64
		for i := 0; i < 5; i++ {
			t0 := time.Now()
			e.ok("exec", "d0", "--", "docker", "run", "--rm", "my-image:1", "echo", "hi")
			runs = append(runs, time.Since(t0).Seconds())
		}
		res["docker_run_rm_seconds"] = summary(runs)
		e.ok("rm", "-f", "d0")

		for i := 0; i < 10; i++ {
			e.ok("create", "--name", fmt.Sprintf("s%d", i), "--memory", "1G", "--workspace", e.ws)
		}
		var list []struct {
			Name      string `json:"name"`
			DiskBytes int64  `json:"disk_bytes"`
		}
		json.Unmarshal([]byte(e.ok("ls", "--json")), &list)
		var total int64
		for _, s := range list {
			total += s.DiskBytes
		}
		var tpls []struct {
			Name       string `json:"name"`
			ImageUsage int64  `json:"image_usage"`
		}
		json.Unmarshal([]byte(e.ok("template", "ls", "--json")), &tpls)
		var tplBytes int64
		for _, tp := range tpls {
			if tp.Name == "debian" {
				tplBytes = tp.ImageUsage
			}
		}
		res["ten_sandboxes"] = map[string]any{
			"template":                    "debian",
			"template_image_bytes_shared": tplBytes,
			"overlay_bytes_total":         total,
			"overlay_bytes_per_sandbox":   total / int64(max(len(list), 1)),
			"sandboxes":                   len(list),
		}
		for i := 0; i < 10; i++ {
			e.ok("rm", "-f", fmt.Sprintf("s%d", i))
		}
	}
	out, _ := json.MarshalIndent(res, "", "  ")
	os.MkdirAll("../../docs/bench", 0o755)
	if err := os.WriteFile("../../docs/bench/images.json", append(out, '\n'), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("%s", out)
}

func summary(v []float64) map[string]float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return map[string]float64{"min": s[0], "median": s[len(s)/2], "max": s[len(s)-1]}
}
