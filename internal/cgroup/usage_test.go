package cgroup

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParseKV(t *testing.T) {
	got := parseKV("usage_usec 12345\nuser_usec 100\nbroken\nbad x\n\nnr_throttled 3")
	want := map[string]uint64{"usage_usec": 12345, "user_usec": 100, "nr_throttled": 3}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseKV = %v, want %v", got, want)
	}
	for in, want := range map[string]uint64{"42\n": 42, "max\n": 0, " 7 ": 7} {
		if got, err := parseUint(in); err != nil || got != want {
			t.Errorf("parseUint(%q) = %d, %v", in, got, err)
		}
	}
	if _, err := parseUint("x"); err == nil {
		t.Error("parseUint(x): no error")
	}
	if workingSet(10, 20) != 0 || workingSet(30, 20) != 10 {
		t.Error("workingSet")
	}
}

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	for name, s := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadV2(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"memory.current": "1000\n",
		"memory.stat":    "anon 600\nfile 400\ninactive_file 300\n",
		"memory.peak":    "1500\n",
		"cpu.stat":       "usage_usec 2500\nuser_usec 2000\n",
		"pids.current":   "9\n",
		"cgroup.procs":   "10\n20\n",
	})
	u, err := readV2(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := Usage{CPUNanos: 2_500_000, MemoryBytes: 700, MemoryCharged: 1000, MemoryPeak: 1500, Pids: 9, Procs: []int{10, 20}}
	if !reflect.DeepEqual(u, want) {
		t.Errorf("readV2 = %+v, want %+v", u, want)
	}
	if _, err := readV2(t.TempDir()); err == nil {
		t.Error("readV2 of an empty folder: no error")
	}
}
