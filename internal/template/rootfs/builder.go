// Package rootfs makes a template's root filesystem: a tree in a staging
// folder (busybox from its static package, or Debian by debootstrap, then
// apt packages, npm packages run unprivileged in a build jail, the user)
// and the sparse ext4 image of it, with owners, set-id modes, capabilities
// and device nodes the host copy cannot carry set inside the image.
package rootfs

import (
	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/template"
	"github.com/paddock-dev/paddock/internal/template/fetch"
	"github.com/paddock-dev/paddock/internal/template/recipe"
)

// Builder makes the root filesystem tree of one recipe's build in a
// staging folder: Busybox or Debootstrap, then (debootstrap) apt packages,
// npm packages, the docker wrapper and the user. MakeImage turns the tree
// into the ext4 image.
type Builder struct {
	Recipe *recipe.Recipe
	Home   store.Home           // the cache: debootstrap tarballs, apt archives
	Out    store.TemplateLayout // the build's temporary directory
	Run    template.Runner
	Apt    *fetch.Apt
	Steps  *template.Steps
}
