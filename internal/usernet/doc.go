// Package usernet is a sandbox's user-space network: a gVisor netstack
// attached to QEMU's "-netdev stream" socket through gVisor's channel and
// ethernet link endpoints, with the sandbox resolver and policy-enforcing
// TCP and UDP forwarders.
//
// Nothing here needs root or touches the host's network configuration:
// every guest connection ends in this process, which decides it with
// package netpolicy and, when allowed, dials the destination itself with an
// ordinary socket. Nothing dials an address the policy has not allowed: there
// is no generic NAT forwarder, DHCP server or HTTP service.
//
// The link (link.go) is the only glue: QEMU sends each frame after its
// length as 4 big-endian bytes. gvisor-tap-vsock's switch did the same job
// but links gopacket, whose package init fills ~7 MiB of tables in every
// process that imports it: 6.4 MiB of each supervisor's memory and ~3 ms
// of every paddock command's start (docs/BENCHMARKS.md).
package usernet
