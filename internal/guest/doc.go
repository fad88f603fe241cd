// Package guest is paddock-agent, the program that runs as PID 1 inside a
// sandbox's microVM.
//
// Boot (boot.go) turns the initramfs into a running system: it mounts the
// kernel file systems, loads the modules the host listed, switches to the
// root disk named on the kernel command line and finds the virtio-serial
// control port. Serve (serve.go) then answers the ttrpc service of
// api/agent/v1 on that port for as long as the VM runs, one host connection
// at a time, so that a host process that connects after a save/restore of the
// VM is served like the first.
//
// The RPCs live in one file each (ping.go, configure.go, exec.go, quiesce.go,
// shutdown.go). Process lifetimes go through one Reaper (reaper.go), because
// PID 1 inherits every orphan and must not steal the exit status of a process
// an Exec is waiting for.
//
// Everything that does not need root or a VM (passwd editing, user lookup,
// environment building, command lines, exec, the busy-process finder) takes
// its paths and collaborators as fields so that it is unit-tested on the host.
package guest
