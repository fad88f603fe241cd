package guest

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// validateNetwork gathers every problem of a Network request.
func validateNetwork(n *agentv1.Network) error {
	var errs []error
	if n.GetInterface() == "" || len(n.GetInterface()) >= unix.IFNAMSIZ || strings.ContainsAny(n.GetInterface(), "/ ") {
		errs = append(errs, fmt.Errorf("network interface %q: want a name like eth0", n.GetInterface()))
	}
	p, err := netip.ParsePrefix(n.GetAddress())
	if err != nil || !p.Addr().Is4() {
		errs = append(errs, fmt.Errorf("network address %q: want an IPv4 CIDR such as 192.168.127.2/24", n.GetAddress()))
	}
	if g := n.GetGateway(); g != "" {
		if a, err := netip.ParseAddr(g); err != nil || !a.Is4() {
			errs = append(errs, fmt.Errorf("network gateway %q: want an IPv4 address", g))
		}
	}
	for _, ns := range n.GetNameservers() {
		if _, err := netip.ParseAddr(ns); err != nil {
			errs = append(errs, fmt.Errorf("nameserver %q: want an IP address", ns))
		}
	}
	if m := n.GetMtu(); m != 0 && (m < 576 || m > 65535) {
		errs = append(errs, fmt.Errorf("mtu %d: want 576-65535", m))
	}
	return errors.Join(errs...)
}

// configureNetwork gives the interface its static address, MTU and default
// route, turns IPv6 off (the sandbox network is IPv4 only), and writes
// /etc/resolv.conf. Idempotent: Configure runs after every boot and restore.
func (a *Agent) configureNetwork(n *agentv1.Network) error {
	ifname := n.GetInterface()
	p := netip.MustParsePrefix(n.GetAddress())
	for _, f := range []string{"all", "default", ifname} {
		// Absent when the kernel has no IPv6: nothing to turn off.
		os.WriteFile("/proc/sys/net/ipv6/conf/"+f+"/disable_ipv6", []byte("1\n"), 0o644)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("network %s: %w", ifname, err)
	}
	defer unix.Close(fd)
	ioc := func(what string, req uint, set func(*unix.Ifreq) error) error {
		ifr, err := unix.NewIfreq(ifname)
		if err != nil {
			return fmt.Errorf("network %s: %w", ifname, err)
		}
		if err := set(ifr); err != nil {
			return fmt.Errorf("network %s: %s: %w", ifname, what, err)
		}
		if err := unix.IoctlIfreq(fd, req, ifr); err != nil {
			return fmt.Errorf("network %s: %s: %w", ifname, what, err)
		}
		return nil
	}
	addr := p.Addr().As4()
	maskBytes := [4]byte{}
	for i := 0; i < p.Bits(); i++ {
		maskBytes[i/8] |= 0x80 >> (i % 8)
	}
	if err := ioc("set address", unix.SIOCSIFADDR, func(r *unix.Ifreq) error { return r.SetInet4Addr(addr[:]) }); err != nil {
		return err
	}
	if err := ioc("set netmask", unix.SIOCSIFNETMASK, func(r *unix.Ifreq) error { return r.SetInet4Addr(maskBytes[:]) }); err != nil {
		return err
	}
	if m := n.GetMtu(); m != 0 {
		if err := ioc("set mtu", unix.SIOCSIFMTU, func(r *unix.Ifreq) error { r.SetUint32(m); return nil }); err != nil {
			return err
		}
	}
	if err := linkUp(ifname); err != nil {
		return err
	}
	if g := n.GetGateway(); g != "" {
		if err := addDefaultRoute(fd, ifname, netip.MustParseAddr(g)); err != nil {
			return err
		}
	}
	var conf strings.Builder
	conf.WriteString("# written by paddock-agent: the sandbox resolver\n")
	for _, ns := range n.GetNameservers() {
		fmt.Fprintf(&conf, "nameserver %s\n", ns)
	}
	conf.WriteString("options edns0\n")
	resolv := a.path("/etc/resolv.conf")
	// A symlink (systemd-resolved) would send the write elsewhere.
	if st, err := os.Lstat(resolv); err == nil && st.Mode()&os.ModeSymlink != 0 {
		os.Remove(resolv)
	}
	return writeFileAtomic(resolv, []byte(conf.String()), 0o644)
}

// rtentry is struct rtentry of linux/route.h on 64-bit targets, for the
// SIOCADDRT ioctl (no netlink library needed for one route).
type rtentry struct {
	pad1    uint64
	dst     unix.RawSockaddrInet4
	gateway unix.RawSockaddrInet4
	genmask unix.RawSockaddrInet4
	flags   uint16
	pad2    int16
	pad3    uint64
	pad4    uintptr
	metric  int16
	dev     *byte
	mtu     uint64
	window  uint64
	irtt    uint16
}

func addDefaultRoute(fd int, ifname string, gw netip.Addr) error {
	dev, err := unix.BytePtrFromString(ifname)
	if err != nil {
		return err
	}
	rt := rtentry{flags: unix.RTF_UP | unix.RTF_GATEWAY, dev: dev}
	rt.dst.Family, rt.gateway.Family, rt.genmask.Family = unix.AF_INET, unix.AF_INET, unix.AF_INET
	rt.gateway.Addr = gw.As4()
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCADDRT, uintptr(unsafe.Pointer(&rt)))
	if errno != 0 && errno != unix.EEXIST {
		return fmt.Errorf("network %s: default route via %s: %w", ifname, gw, errno)
	}
	return nil
}
