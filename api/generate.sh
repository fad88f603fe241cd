#!/bin/sh
# Regenerates the Go code beside each .proto. Needs protoc, protoc-gen-go,
# protoc-gen-go-grpc, protoc-gen-go-ttrpc and protoc-gen-connect-go (make proto
# installs the Go plugins). The agent's service also gets ttrpc code: the supervisor speaks
# ttrpc to the guest agent and gRPC to the CLI.
set -eu
cd "$(dirname "$0")/.."
for f in api/*/v1/*.proto; do
	protoc -I . --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative "$f"
done
protoc -I . --go-ttrpc_out=. --go-ttrpc_opt=paths=source_relative,prefix=TTRPC api/agent/v1/agent.proto
# E2B's envd services, served over the Connect protocol by paddock serve.
for f in api/envd/*/*.proto; do
	protoc -I . --go_out=. --go_opt=paths=source_relative \
		--connect-go_out=. --connect-go_opt=paths=source_relative "$f"
done
