package build

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/paddock-dev/paddock/internal/template/rootfs"
)

func TestBuildErrors(t *testing.T) {
	if _, err := Build(context.Background(), Options{Home: "rel", Name: "tiny"}); err == nil {
		t.Error("relative home accepted")
	}
	if os.Geteuid() != 0 {
		_, err := Build(context.Background(), Options{Home: t.TempDir(), Name: "debian"})
		if !errors.Is(err, rootfs.ErrNeedRoot) {
			t.Errorf("debian without root: %v", err)
		}
	}
}
