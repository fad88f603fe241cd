package fetch

import (
	"strings"
	"testing"
)

func TestDepLines(t *testing.T) {
	files := map[string]string{
		"ext4": "kernel/fs/ext4/ext4.ko", "jbd2": "kernel/fs/jbd2/jbd2.ko",
		"crc16": "kernel/lib/crc16.ko", "mbcache": "kernel/fs/mbcache.ko",
	}
	direct := map[string][]string{"ext4": {"crc16", "mbcache", "jbd2"}, "jbd2": {"crc16"}}
	got, err := depLines(files, direct)
	if err != nil {
		t.Fatal(err)
	}
	// Every dependency, indirect ones too, and in an order that loads when
	// read backwards (jbd2 needs crc16, so crc16 comes after jbd2).
	line := "kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko kernel/fs/mbcache.ko kernel/lib/crc16.ko"
	if !strings.Contains(got, line+"\n") {
		t.Errorf("want line %q in\n%s", line, got)
	}
	if _, err := depLines(files, map[string][]string{"ext4": {"missing"}}); err == nil {
		t.Error("dependency outside the tree accepted")
	}
}
