package sandbox

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSumCloses(t *testing.T) {
	data := `{"event":"connect","verdict":"allow"}
{"event":"close","sent":100,"received":2000}
{"event":"dns","name":"close"}
{"event":"close","sent":5,"received":7}
{"event":"close","sent":1`
	sent, recv, n := sumCloses([]byte(data))
	if sent != 105 || recv != 2007 {
		t.Errorf("sent %d received %d, want 105 2007", sent, recv)
	}
	if want := len(data) - len(`{"event":"close","sent":1`); n != want {
		t.Errorf("consumed %d, want %d (the partial last line waits)", n, want)
	}
}

func TestNetCountRotation(t *testing.T) {
	dir := t.TempDir()
	log, old := filepath.Join(dir, "net.jsonl"), filepath.Join(dir, "net.jsonl.1")
	os.WriteFile(log, []byte(`{"event":"close","sent":1,"received":10}`+"\n"), 0o600)
	c := &netCount{files: map[uint64]*netFile{}}
	if s, r := c.read(old, log); s != 1 || r != 10 {
		t.Fatalf("first read %d %d", s, r)
	}
	// Rotation: the log becomes .1 (same inode), a new log starts.
	os.Rename(log, old)
	os.WriteFile(log, []byte(`{"event":"close","sent":2,"received":20}`+"\n"), 0o600)
	if s, r := c.read(old, log); s != 3 || r != 30 {
		t.Errorf("after rotation %d %d, want 3 30", s, r)
	}
	f, _ := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"event":"close","sent":4,"received":40}` + "\n")
	f.Close()
	if s, r := c.read(old, log); s != 7 || r != 70 {
		t.Errorf("after append %d %d, want 7 70", s, r)
	}
}

func TestParseStatus(t *testing.T) {
	kv := parseStatus("Name:\tqemu\nVmRSS:\t  1024 kB\nThreads:\t5\n")
	if kv["VmRSS"] != 1024 || kv["Threads"] != 5 {
		t.Errorf("parseStatus = %v", kv)
	}
}
