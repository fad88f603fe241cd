package qemu

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestProbeVerdict(t *testing.T) {
	cases := []struct {
		line string
		done bool
		ok   bool
	}{
		{"[    0.000000] Linux version 6.1.0-56-amd64", false, false},
		{"[    0.912] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)", true, true},
		{"KVM internal error. Suberror: 1", true, false},
		{"emulation failure", true, false},
	}
	for _, c := range cases {
		done, err := probeVerdict(c.line)
		if done != c.done || (done && (err == nil) != c.ok) {
			t.Errorf("probeVerdict(%q) = %v, %v", c.line, done, err)
		}
	}
}

func TestProbeArgsUseKVMWithoutInitramfs(t *testing.T) {
	a := ProbeArgs("/k/vmlinux")
	if !slices.Equal(flag(a, "-accel"), []string{"kvm"}) || len(flag(a, "-initrd")) != 0 || len(flag(a, "-drive")) != 0 {
		t.Fatalf("probe args %q", a)
	}
	if len(flag(a, "-sandbox")) != 1 {
		t.Fatal("probe runs without the seccomp sandbox")
	}
}

func TestChooseAccelAutoFallsBackWhenTheProbeFails(t *testing.T) {
	if kvmUsable() != nil {
		// No hardware virtualization here: auto must not even probe.
		probed := false
		a, warn, err := ChooseAccel("auto", func() error { probed = true; return nil })
		if err != nil || a != "tcg" || probed || !strings.Contains(warn, "TCG") {
			t.Fatalf("auto on a host without vmx/svm: %s %q %v probed=%v", a, warn, err, probed)
		}
		return
	}
	a, warn, err := ChooseAccel("auto", func() error { return errors.New("KVM internal error") })
	if err != nil || a != "tcg" || !strings.Contains(warn, "KVM internal error") {
		t.Fatalf("auto with a failing probe: %s %q %v", a, warn, err)
	}
	if a, _, err := ChooseAccel("auto", func() error { return nil }); err != nil || a != "kvm" {
		t.Fatalf("auto with a passing probe: %s %v", a, err)
	}
}
