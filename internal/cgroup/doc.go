// Package cgroup puts a sandbox's host processes (its supervisor, and the
// QEMU the supervisor starts) in a control group of their own, with a CPU
// quota, a memory limit and a pids limit, and reads that group's use.
// It manages groups through github.com/containerd/cgroups/v3 on cgroup v1
// and v2, directly in the cgroup file system or as a systemd transient
// scope where systemd runs the host on v2.
package cgroup
