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
	path := home.KVMProbe()
	var p kvmProbe
	if err := store.ReadJSON(path, &p); err == nil && p.BootID == store.BootID() && p.Kernel == kernel {
		if p.Error != "" {
			return errors.New(p.Error)
		}
		return nil
	}
	view, err := newVMView("kvm-probe", []vmDir{{path: filepath.Dir(kernel)}}, "kvm")
	if err != nil {
		return err
	}
	err = qemu.ProbeKVM(ctx, view.path(kernel), view.confine, 20*time.Second)
	view.Close()
	p = kvmProbe{BootID: store.BootID(), Kernel: kernel}
	if err != nil {
		p.Error = err.Error()
	}
	store.WriteJSON(path, p)
	return err
}

// tscProbe is the host's TSC rate, measured once per host boot.
type tscProbe struct {
	BootID string `json:"boot_id"`
	KHz    int64  `json:"khz"`
}

// hostTSC returns the host's TSC rate in kHz for a TCG guest's kernel
// command line (qemu.KernelCmdline), measuring it once per host boot: a
// saved state is keyed by it, so it must not change from one supervisor
// to the next.
func hostTSC(home store.Home) int64 {
	path := home.TSC()
	var p tscProbe
	if err := store.ReadJSON(path, &p); err == nil && p.BootID == store.BootID() && p.KHz > 0 {
		return p.KHz
	}
	p = tscProbe{BootID: store.BootID(), KHz: qemu.HostTSCkHz(50 * time.Millisecond)}
	store.WriteJSON(path, p)
	return p.KHz
}
