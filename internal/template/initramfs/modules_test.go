package initramfs

import (
	"reflect"
	"strings"
	"testing"

	"github.com/paddock-dev/paddock/internal/template"
)

// A modules.dep as depmod writes it: full dependency lists, last loaded first.
const fakeModulesDep = `kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/crypto/crc32c_generic.ko:
kernel/drivers/char/hw_random/virtio-rng.ko:
kernel/fs/9p/9p.ko: kernel/fs/netfs/netfs.ko kernel/net/9p/9pnet.ko
kernel/net/9p/9pnet.ko:
kernel/fs/netfs/netfs.ko:
`

func TestLoadOrder(t *testing.T) {
	deps, err := parseModulesDep(strings.NewReader(fakeModulesDep))
	if err != nil {
		t.Fatal(err)
	}
	builtin := map[string]bool{"af_packet": true}
	got, err := loadOrder(deps, builtin, []guestModule{
		{Name: "virtio_net"},
		{Name: "virtio-rng"}, // '-' and '_' are the same
		{Name: "af_packet"},  // built in: skipped
		{Name: "crc32c_generic"},
		{Name: "ext4"},
		{Name: "jbd2"}, // already loaded for ext4: not twice
		{Name: "9p"},
		{Name: "vsock", Optional: true}, // absent and optional: left out
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kernel/net/core/failover.ko",
		"kernel/drivers/net/net_failover.ko",
		"kernel/drivers/net/virtio_net.ko",
		"kernel/drivers/char/hw_random/virtio-rng.ko",
		"kernel/crypto/crc32c_generic.ko",
		"kernel/lib/crc16.ko",
		"kernel/fs/mbcache.ko",
		"kernel/fs/jbd2/jbd2.ko",
		"kernel/fs/ext4/ext4.ko",
		"kernel/fs/netfs/netfs.ko",
		"kernel/net/9p/9pnet.ko",
		"kernel/fs/9p/9p.ko",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order:\n got %q\nwant %q", got, want)
	}
}

func TestLoadOrderErrors(t *testing.T) {
	deps, _ := parseModulesDep(strings.NewReader(fakeModulesDep))
	if _, err := loadOrder(deps, nil, []guestModule{{Name: "vsock"}, {Name: "fuse"}}); err == nil ||
		!strings.Contains(err.Error(), "vsock, fuse") {
		t.Errorf("missing required modules: %v", err)
	}
	cyc, _ := parseModulesDep(strings.NewReader("a.ko: b.ko\nb.ko: a.ko\n"))
	if _, err := loadOrder(cyc, nil, []guestModule{{Name: "a"}}); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: %v", err)
	}
	broken, _ := parseModulesDep(strings.NewReader("a.ko: gone.ko\n"))
	if _, err := loadOrder(broken, nil, []guestModule{{Name: "a"}}); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Errorf("dangling dependency: %v", err)
	}
	if _, err := parseModulesDep(strings.NewReader("no colon here\n")); err == nil {
		t.Error("malformed modules.dep accepted")
	}
}

func TestGuestModulesListed(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range guestModules {
		n := template.ModuleName(m.Name)
		if seen[n] {
			t.Errorf("%s listed twice", n)
		}
		seen[n] = true
	}
	for _, need := range []string{"virtio_mmio", "virtio_blk", "ext4", "virtio_net", "overlay", "virtio_console"} {
		if !seen[need] {
			t.Errorf("%s missing from guestModules", need)
		}
	}
}
