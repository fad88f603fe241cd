package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/paddock-dev/paddock/internal/bench"
)

// busyWork is an ordinary mix for an agent's sandbox: Python imports, a
// Node script that allocates and sorts, a few git commits, npm starting.
const busyWork = `python3 -c "import json, http.client, asyncio, unittest, email, sqlite3, xml.dom.minidom, argparse, decimal"
node -e 'let a=[]; for (let i=0;i<200000;i++) a.push({i, s: String(i)}); a.sort((x,y)=>y.i-x.i); require("crypto").createHash("sha256").update("x").digest("hex")'
rm -rf /tmp/r && git init -q /tmp/r && cd /tmp/r
for i in 1 2 3 4 5; do echo $i > f$i; git add f$i; git -c user.email=a@b -c user.name=a commit -qm $i; done
npm --version >/dev/null`

// BenchmarkBusyMemory runs busyWork three times in one debian sandbox and
// records each run's time and QEMU's memory after it: under TCG, QEMU
// keeps the translations of everything the guest ran, up to its code
// buffer's size. It writes docs/bench/busy.json:
//
//	go test ./test/e2e -run XXX -bench BusyMemory -benchtime 1x
//
// Needs root and the debian template.
func BenchmarkBusyMemory(b *testing.B) {
	e := newEnv(b, "debian")
	e.ok("create", "--name", "busy", "--template", "debian", "--workspace", e.ws)
	pid := e.inspect("busy").QEMUPid
	res := map[string]any{
		"when":     time.Now().UTC().Format(time.RFC3339),
		"host":     fmt.Sprintf("%d cores, %s", runtime.NumCPU(), runtime.GOARCH),
		"template": "debian",
		"work":     busyWork,
	}
	var runs []map[string]float64
	res["qemu_pss_mib_after_create"] = pssMiB(b, pid)
	for i := 0; i < 3; i++ {
		t0 := time.Now()
		e.ok("exec", "busy", "--", "sh", "-ec", busyWork)
		d := time.Since(t0)
		runs = append(runs, map[string]float64{"seconds": d.Seconds(), "qemu_pss_mib": pssMiB(b, pid)})
		b.Logf("run %d: %s, QEMU PSS %.0f MiB", i+1, d.Round(time.Millisecond), runs[i]["qemu_pss_mib"])
	}
	res["runs"] = runs
	j, _ := json.MarshalIndent(res, "", "  ")
	os.MkdirAll("../../docs/bench", 0o755)
	os.WriteFile("../../docs/bench/busy.json", append(j, '\n'), 0o644)
	b.ReportMetric(runs[len(runs)-1]["qemu_pss_mib"], "MiB-qemu")
	for b.Loop() {
	}
}

// pssMiB is a process's proportional set size.
func pssMiB(tb testing.TB, pid int) float64 {
	tb.Helper()
	mib, err := bench.ProcessPSS(pid)
	if err != nil {
		tb.Fatal(err)
	}
	return mib
}
