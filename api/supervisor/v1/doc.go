// Package supervisorv1 is the generated gRPC code of supervisor.proto: the
// API a sandbox's supervisor serves to the CLI on its unix socket.
package supervisorv1
