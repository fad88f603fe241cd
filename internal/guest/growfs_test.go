package guest

import (
	"encoding/binary"
	"testing"
)

func TestParseExt4Super(t *testing.T) {
	super := func(lo, hi, log, incompat uint32) []byte {
		sb := make([]byte, 1024)
		binary.LittleEndian.PutUint16(sb[0x38:], 0xEF53)
		binary.LittleEndian.PutUint32(sb[0x04:], lo)
		binary.LittleEndian.PutUint32(sb[0x18:], log)
		binary.LittleEndian.PutUint32(sb[0x60:], incompat)
		binary.LittleEndian.PutUint32(sb[0x150:], hi)
		return sb
	}
	for _, tc := range []struct {
		name      string
		sb        []byte
		blocks    uint64
		blockSize uint64
		bad       bool
	}{
		{"512M of 4K blocks", super(131072, 0, 2, 0), 131072, 4096, false},
		{"high word ignored without 64bit", super(5, 7, 2, 0), 5, 4096, false},
		{"64bit", super(1, 2, 2, 0x80), 2<<32 | 1, 4096, false},
		{"1K blocks", super(1000, 0, 0, 0), 1000, 1024, false},
		{"no magic", make([]byte, 1024), 0, 0, true},
		{"short", []byte{1, 2}, 0, 0, true},
		{"absurd block size", super(1, 0, 30, 0), 0, 0, true},
	} {
		blocks, bs, err := parseExt4Super(tc.sb)
		if (err != nil) != tc.bad || blocks != tc.blocks || bs != tc.blockSize {
			t.Errorf("%s: got %d blocks of %d, err %v", tc.name, blocks, bs, err)
		}
	}
}

// An agent that is not the guest's own (a test's, on a host's folder)
// never touches a disk.
func TestGrowRootOnlyInGuest(t *testing.T) {
	a := &Agent{Root: t.TempDir()}
	if err := a.growRoot(); err != nil {
		t.Fatal(err)
	}
	if rootGrown.size != 0 {
		t.Fatalf("checked a disk: %d", rootGrown.size)
	}
}
