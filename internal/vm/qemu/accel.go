package qemu

import (
	"fmt"
	"os"
	"strings"
)

// Prober boots a throwaway guest under KVM and reports whether it ran.
type Prober func() error

// ChooseAccel resolves a requested accelerator ("auto", "kvm", "tcg") to
// the one QEMU will use, with a one-line warning when auto falls back to
// TCG. auto picks KVM only when the CPU advertises hardware virtualization
// (vmx or svm), /dev/kvm opens, and probe (if given) saw a guest kernel
// really run under it: a /dev/kvm alone is not enough, since a paravirtual
// KVM (kvm_pvm) cannot run a stock kernel. kvm forces KVM whenever
// /dev/kvm opens.
func ChooseAccel(requested string, probe Prober) (accel, warning string, err error) {
	switch requested {
	case "tcg":
		return "tcg", "", nil
	case "kvm":
		if err := kvmOpens(); err != nil {
			return "", "", fmt.Errorf("--accel kvm: %w", err)
		}
		return "kvm", "", nil
	case "", "auto":
		if err := kvmUsable(); err != nil {
			return "tcg", "warning: KVM is not usable (" + err.Error() + "); using TCG emulation, which is much slower", nil
		}
		if probe != nil {
			if err := probe(); err != nil {
				return "tcg", "warning: a test guest failed under KVM (" + err.Error() + "); using TCG emulation, which is much slower", nil
			}
		}
		return "kvm", "", nil
	}
	return "", "", fmt.Errorf("invalid accel %q: use auto, kvm or tcg", requested)
}

func kvmUsable() error {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return err
	}
	hw := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "flags") {
			for _, f := range strings.Fields(line) {
				if f == "vmx" || f == "svm" {
					hw = true
				}
			}
			break
		}
	}
	if !hw {
		return fmt.Errorf("the CPU has no vmx/svm flag")
	}
	return kvmOpens()
}

func kvmOpens() error {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("/dev/kvm: %w", err)
	}
	return f.Close()
}
