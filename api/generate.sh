#!/bin/sh
# Regenerates the Go code beside each .proto. Needs protoc, protoc-gen-go and
# protoc-gen-go-grpc (make proto installs the Go plugins).
set -eu
cd "$(dirname "$0")/.."
for f in api/*/v1/*.proto; do
	protoc -I . --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative "$f"
done
