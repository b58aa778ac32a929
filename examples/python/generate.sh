#!/bin/sh
# Generates the Python message classes and gRPC stubs for the Decant store protocol into
# examples/python/gen/ (gitignored). Run from anywhere; needs grpcio-tools:
#   Debian/Ubuntu: apt-get install python3-grpcio python3-grpc-tools
#   or:            python3 -m pip install grpcio grpcio-tools
# PYTHON picks the interpreter; by default /usr/bin/python3 (where the Debian packages put
# grpc), else python3 on PATH.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ -n "${PYTHON:-}" ]; then
  python=$PYTHON
elif [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import grpc_tools" 2>/dev/null; then
  python=/usr/bin/python3
else
  python=python3
fi
out="$here/gen"

if ! "$python" -c "import grpc_tools" 2>/dev/null; then
  echo "generate.sh: $python has no grpc_tools; install python3-grpc-tools (apt) or grpcio-tools (pip)" >&2
  exit 2
fi

rm -rf "$out"
mkdir -p "$out"
cd "$root"
"$python" -m grpc_tools.protoc -I proto --python_out="$out" --grpc_python_out="$out" proto/decant/v1/store.proto
# client.py runs itself under this interpreter when the one it was started with lacks grpc
# (stubs and grpc must come from the same Python).
"$python" -c 'import sys; print(sys.executable)' > "$out/PYTHON"
echo "generated $out/decant/v1/store_pb2.py and store_pb2_grpc.py with $(cat "$out/PYTHON")"
