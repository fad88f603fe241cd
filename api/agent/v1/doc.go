// Package agentv1 is the generated gRPC code of agent.proto: the control
// protocol between a sandbox's supervisor and its guest agent.
package agentv1
