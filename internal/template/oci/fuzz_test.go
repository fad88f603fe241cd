package oci

import (
	"archive/tar"
	"bytes"
	"testing"
)

// Whatever a layer's tar stream holds, extraction stays inside its root:
// nothing appears beside it and the host file there is untouched.
func FuzzExtract(f *testing.F) {
	f.Add(tarOf(&testing.T{},
		tar.Header{Typeflag: tar.TypeSymlink, Name: "up", Linkname: "../outside", Mode: 0o777},
		tar.Header{Typeflag: tar.TypeReg, Name: "up/f", Mode: 0o644},
		tar.Header{Typeflag: tar.TypeLink, Name: "h", Linkname: "../outside/hostfile"},
		tar.Header{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o555},
		tar.Header{Typeflag: tar.TypeReg, Name: "d/.wh.x", Mode: 0o644},
		tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3},
		tar.Header{Typeflag: tar.TypeReg, Name: "suid", Mode: 0o4755, Uid: 0},
	))
	f.Fuzz(func(t *testing.T, stream []byte) {
		_, outside, _, _ := unpack(t, bytes.NewReader(stream))
		checkOutside(t, outside)
	})
}
