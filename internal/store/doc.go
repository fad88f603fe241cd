// Package store owns paddock's on-disk state: where PADDOCK_HOME is, the
// files each sandbox has under it, name and size validation, atomic writes,
// and pid files that carry the host's boot id so a pid from before a reboot
// is never mistaken for a live process.
package store
