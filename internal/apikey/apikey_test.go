package apikey

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paddock-dev/paddock/internal/store"
)

func TestKeys(t *testing.T) {
	home := store.Home(t.TempDir())
	s := Open(home)
	k, err := s.Create("ci-bot")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k, "e2b_") || len(k) != len("e2b_")+40 {
		t.Fatalf("key %q", k)
	}
	if name, ok := s.Verify(k); !ok || name != "ci-bot" {
		t.Fatalf("Verify = %q, %v", name, ok)
	}
	for _, bad := range []string{"", k + "0", "e2b_" + strings.Repeat("0", 40), strings.ToUpper(k)} {
		if _, ok := s.Verify(bad); ok {
			t.Errorf("Verify(%q) accepted", bad)
		}
	}
	if _, err := s.Create("ci-bot"); err == nil {
		t.Error("a second key of the same name")
	}
	if _, err := s.Create("Bad Name"); err == nil {
		t.Error("an invalid name accepted")
	}
	b, _ := os.ReadFile(filepath.Join(string(home), "apikeys.json"))
	if strings.Contains(string(b), k[4:]) {
		t.Fatal("the key itself is stored")
	}
	if st, _ := os.Stat(filepath.Join(string(home), "apikeys.json")); st.Mode().Perm() != 0o600 {
		t.Errorf("keys file mode %v", st.Mode())
	}
	if err := s.Remove("ci-bot"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Verify(k); ok {
		t.Error("a removed key still verifies")
	}
	if err := s.Remove("ci-bot"); err == nil {
		t.Error("removing a missing key")
	}
}
