// Package supervisor is the host process that owns one running sandbox: it
// starts QEMU as its child (QEMU dies with it), holds the control
// connection to the guest agent, writes the console and exec logs, and
// serves the sandbox's API on a unix socket in the sandbox directory. There
// is one supervisor per running sandbox and no central daemon.
package supervisor
