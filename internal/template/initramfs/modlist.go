package initramfs

// guestModule is a kernel module the initramfs carries for the agent to
// load at boot. A module built into the kernel is skipped. A missing
// required module fails Initramfs; a missing optional one is left out.
type guestModule struct {
	Name     string
	Optional bool
}

// guestModules is every module the guest may need, in the order the agent
// should load them (Initramfs puts each one's dependencies before it).
// Extend it here.
var guestModules = []guestModule{
	// Devices: microvm exposes virtio-mmio devices through ACPI.
	{Name: "virtio_mmio"},
	{Name: "virtio_pci", Optional: true},
	{Name: "virtio_blk"},
	{Name: "virtio_console"},
	{Name: "virtio_net"},
	{Name: "virtio_rng", Optional: true},
	{Name: "virtio_balloon", Optional: true},

	// Filesystems: the root disk (the workspace is a synced copy on it),
	// FUSE for the guest's own use, Docker's overlay2. ext4 checksums use
	// crc32c through the crypto API, which cannot request a module without
	// modprobe: load it first.
	{Name: "crc32c_generic"},
	{Name: "ext4"},
	{Name: "fuse"},
	{Name: "overlay"},
	{Name: "loop", Optional: true},

	// Control channel where the host has vhost-vsock.
	{Name: "vsock", Optional: true},
	{Name: "vmw_vsock_virtio_transport", Optional: true},

	// Networking (af_packet is built into Debian's kernel: DHCP clients).
	{Name: "af_packet", Optional: true},
	{Name: "tun", Optional: true},

	// What Docker needs: bridge networking and iptables over nf_tables.
	{Name: "bridge", Optional: true},
	{Name: "veth", Optional: true},
	{Name: "br_netfilter", Optional: true},
	{Name: "nf_tables", Optional: true},
	{Name: "nft_compat", Optional: true},
	{Name: "nft_chain_nat", Optional: true},
	{Name: "nft_masq", Optional: true},
	{Name: "nft_ct", Optional: true},
	{Name: "nf_conntrack", Optional: true},
	{Name: "nf_nat", Optional: true},
	{Name: "xt_conntrack", Optional: true},
	{Name: "xt_addrtype", Optional: true},
	{Name: "xt_MASQUERADE", Optional: true},
	{Name: "xt_nat", Optional: true},
	{Name: "ip_tables", Optional: true},
	{Name: "iptable_nat", Optional: true},
	{Name: "iptable_filter", Optional: true},
	{Name: "ip6_tables", Optional: true},
	{Name: "ip6table_nat", Optional: true},
	{Name: "ip6table_filter", Optional: true},
}
