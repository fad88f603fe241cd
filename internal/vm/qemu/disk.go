package qemu

import (
	"encoding/json"
	"fmt"
)

// RootNode is the node name of the root disk's top image (blockdevs).
const RootNode = "root"

// DiskSize returns the virtual size of the block node named node.
func (m *Monitor) DiskSize(node string) (int64, error) {
	raw, err := m.Execute("query-named-block-nodes", map[string]any{"flat": true})
	if err != nil {
		return 0, err
	}
	var nodes []struct {
		NodeName string `json:"node-name"`
		Image    struct {
			VirtualSize int64 `json:"virtual-size"`
		} `json:"image"`
	}
	if err := json.Unmarshal(raw, &nodes); err != nil {
		return 0, fmt.Errorf("qmp query-named-block-nodes: %w", err)
	}
	for _, n := range nodes {
		if n.NodeName == node {
			return n.Image.VirtualSize, nil
		}
	}
	return 0, fmt.Errorf("qmp query-named-block-nodes: no node %q", node)
}

// GrowDisk makes the block node named node size bytes long, live: the
// guest's virtio-blk driver is told its capacity changed. It refuses to
// shrink (the file system on it would be cut), and does nothing when the
// node already has that size.
func (m *Monitor) GrowDisk(node string, size int64) error {
	cur, err := m.DiskSize(node)
	if err != nil {
		return err
	}
	switch {
	case size == cur:
		return nil
	case size < cur:
		return fmt.Errorf("disk %q is %d bytes, more than the %d asked for: a disk only grows", node, cur, size)
	}
	_, err = m.Execute("block_resize", map[string]any{"node-name": node, "size": size})
	return err
}
