// Package sandbox is the lifecycle of sandboxes as the CLI and API see it:
// create, start, stop, remove, list and inspect. A sandbox is its directory
// under PADDOCK_HOME plus, while it runs, one supervisor process; its
// status is derived from those facts every time, never stored.
package sandbox
