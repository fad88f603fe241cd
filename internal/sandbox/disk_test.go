package sandbox

import (
	"strings"
	"testing"
)

func TestDiskSize(t *testing.T) {
	const (
		M = int64(1) << 20
		G = int64(1) << 30
	)
	for _, tc := range []struct {
		flag              string
		want, image, free int64
		size              int64
		err               string
	}{
		{"", 0, 512 * M, 50 * G, 0, ""},
		{"1G", G, 512 * M, 50 * G, G, ""},
		{"512M", 512 * M, 512 * M, 50 * G, 0, ""},
		{"1000000000", 1000000000, 512 * M, 50 * G, 954 * M, ""},
		{"256M", 256 * M, 512 * M, 50 * G, 0, "smaller than the 512M"},
		{"1G", G, 16 * G, 50 * G, 0, "use at least 16G"},
		{"1T", 1 << 40, 512 * M, 50 * G, 0, "only 50.0G is free"},
		{"60G", 60 * G, 16 * G, 50 * G, 0, "only 50.0G is free"},
	} {
		size, err := diskSize(tc.flag, tc.want, tc.image, tc.free)
		if size != tc.size {
			t.Errorf("%s on %d: size %d, want %d", tc.flag, tc.image, size, tc.size)
		}
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s on %d: %v", tc.flag, tc.image, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s on %d: error %v, want one saying %q", tc.flag, tc.image, err, tc.err)
		}
	}
}

func TestLowSpace(t *testing.T) {
	if err := lowSpace("/h", MinFreeSpace); err != nil {
		t.Errorf("exactly the minimum: %v", err)
	}
	err := lowSpace("/h", 300<<20)
	if err == nil || !strings.Contains(err.Error(), "only 300M is free under /h, below the 1G") || !strings.Contains(err.Error(), "paddock rm") {
		t.Errorf("300M free: %v", err)
	}
}

func TestFreeBytesOfAFolderNotMadeYet(t *testing.T) {
	n, err := freeBytes(t.TempDir() + "/not/yet")
	if err != nil || n <= 0 {
		t.Fatalf("free %d, %v", n, err)
	}
}

func TestRoughSize(t *testing.T) {
	for n, want := range map[int64]string{300 << 20: "300M", 57115364 << 10: "54.5G", 3 << 40: "3.0T", 1 << 30: "1.0G"} {
		if got := roughSize(n); got != want {
			t.Errorf("roughSize(%d) = %s, want %s", n, got, want)
		}
	}
}
