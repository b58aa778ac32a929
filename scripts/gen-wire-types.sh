#!/bin/sh
# Generates the TypeScript types of the wire (src/wire/generated/) from proto/, for the options
# the runtime encodes and decodes with (src/wire/proto.ts LOADER_OPTIONS): field names as in the
# .proto, uint64 as decimal strings, enums by name, bytes as Buffer, defaults filled, oneof
# names. Types only: the hot path still runs protobufjs. A test (test/server/wire-types.test.ts)
# fails when the checked-in files differ from a fresh generation.
# Usage: scripts/gen-wire-types.sh [OUT_DIR]   (default src/wire/generated)
set -eu
cd "$(dirname "$0")/.."
out="${1:-src/wire/generated}"
rm -rf "$out"
npx proto-loader-gen-types --keepCase --longs=String --enums=String --bytes=Buffer --defaults --oneofs \
  --grpcLib=@grpc/grpc-js --importFileExtension=.js -I proto -O "$out" \
  decant/v1/store.proto decant/v1/migration.proto google/rpc/status.proto
