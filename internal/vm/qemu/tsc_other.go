//go:build !amd64

package qemu

import "time"

// HostTSCkHz is 0 where there is no x86 TSC to read.
func HostTSCkHz(time.Duration) int64 { return 0 }
