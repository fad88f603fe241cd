package template

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// makeImage makes a sparse ext4 image of size bytes holding the tree at
// staging (mkfs.ext4 -d: no mount, no root). Nothing is reserved for root:
// the agent's user should get the whole disk.
func makeImage(ctx context.Context, run runner, staging, image string, size int64) error {
	f, err := os.OpenFile(image, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	_, err = run.run(ctx, "", "mkfs.ext4", "-q", "-F", "-L", "root", "-m", "0",
		"-E", "root_owner=0:0", "-d", staging, image, fmt.Sprintf("%dk", size>>10))
	return err
}

// fixOwners sets owners inside the image with debugfs, for builds without
// root, where mkfs.ext4 -d copies the builder's own uid: every path becomes
// root's except those in owners (relative path -> uid, gid).
func fixOwners(ctx context.Context, run runner, staging, image string, owners map[string][2]int) error {
	var script strings.Builder
	err := filepath.WalkDir(staging, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(staging, p)
		if err != nil || rel == "." {
			return err
		}
		if strings.ContainsAny(rel, " \t\n\"") {
			return fmt.Errorf("cannot set the owner of %q with debugfs", rel)
		}
		o := owners[filepath.ToSlash(rel)]
		fmt.Fprintf(&script, "sif /%s uid %d\nsif /%s gid %d\n", rel, o[0], rel, o[1])
		return nil
	})
	if err != nil {
		return err
	}
	cmds := filepath.Join(filepath.Dir(image), "debugfs-owners.txt")
	if err := os.WriteFile(cmds, []byte(script.String()), 0o644); err != nil {
		return err
	}
	defer os.Remove(cmds)
	_, err = run.run(ctx, "", "debugfs", "-w", "-f", cmds, image)
	return err
}
