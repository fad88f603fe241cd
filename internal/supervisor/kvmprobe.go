package supervisor

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/vm/qemu"
)

// kvmProbe is the remembered outcome of booting a guest kernel under KVM,
// valid for one host boot and one kernel.
type kvmProbe struct {
	BootID string `json:"boot_id"`
	Kernel string `json:"kernel"`
	Error  string `json:"error,omitempty"` // "" = the guest ran
}

// probeKVM tells whether kernel runs under this host's KVM, booting it once
// per host boot (the answer is kept in the cache).
func probeKVM(ctx context.Context, home store.Home, kernel string) error {
	path := filepath.Join(home.CacheDir(), "kvm-probe.json")
	var p kvmProbe
	if err := store.ReadJSON(path, &p); err == nil && p.BootID == store.BootID() && p.Kernel == kernel {
		if p.Error != "" {
			return errors.New(p.Error)
		}
		return nil
	}
	err := qemu.ProbeKVM(ctx, kernel, 20*time.Second)
	p = kvmProbe{BootID: store.BootID(), Kernel: kernel}
	if err != nil {
		p.Error = err.Error()
	}
	store.WriteJSON(path, p)
	return err
}
