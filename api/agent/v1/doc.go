// Package agentv1 is the generated code of agent.proto, the control protocol
// of a sandbox's guest agent: ttrpc between the supervisor and the agent,
// gRPC between the CLI and the supervisor.
package agentv1
