package guest

import (
	"fmt"
	"os"
	"strings"
)

// Kernel command line keys the host sets (internal/vm/qemu builds them).
const (
	cmdlineRoot      = "paddock.root"      // root block device, e.g. /dev/vda
	cmdlineRootFlags = "paddock.rootflags" // ext4 mount options, optional
	cmdlineCtl       = "paddock.ctl"       // virtio-serial port name

	// DefaultControlPort is the virtio-serial port name when paddock.ctl is absent.
	DefaultControlPort = "paddock.ctl"
)

// BootConfig is what the agent reads from the kernel command line.
type BootConfig struct {
	Root       string // "/dev/vda"
	RootFlags  string // "" or comma-separated mount data
	RootFSType string // always "ext4" for now
	Port       string // virtio-serial port name
}

// ParseCmdline reads the paddock.* keys of a kernel command line. Unknown
// words are ignored; a missing paddock.root is an error, since the agent has
// nothing to switch to.
func ParseCmdline(line string) (BootConfig, error) {
	cfg := BootConfig{Port: DefaultControlPort, RootFSType: "ext4"}
	for _, word := range strings.Fields(line) {
		key, value, ok := strings.Cut(word, "=")
		if !ok {
			continue
		}
		switch key {
		case cmdlineRoot:
			cfg.Root = value
		case cmdlineRootFlags:
			cfg.RootFlags = value
		case cmdlineCtl:
			if value != "" {
				cfg.Port = value
			}
		}
	}
	if cfg.Root == "" {
		return cfg, fmt.Errorf("kernel command line has no %s=DEVICE: the host must name the root disk", cmdlineRoot)
	}
	return cfg, nil
}

// readCmdline reads and parses /proc/cmdline.
func readCmdline(path string) (BootConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return BootConfig{}, fmt.Errorf("read kernel command line: %w", err)
	}
	return ParseCmdline(string(b))
}
