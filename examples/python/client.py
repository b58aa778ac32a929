#!/usr/bin/env python3
"""A small Python client for the Decant store protocol (decant.v1.Store).

Walks through put, get, conditional puts (and what a refused condition looks like), and a
paginated scan, printing one readable line per step. Exits 0 when every step did what the
protocol promises, 1 on any unexpected result, 3 when the sidecar cannot be reached.

Generate the stubs first (examples/python/generate.sh), then:

    python3 examples/python/client.py --addr 127.0.0.1:50051
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "gen"))


def run_under_generating_python():
    """generate.sh records the Python it used in gen/PYTHON (often /usr/bin/python3, where the
    Debian packages put grpc); when this interpreter cannot import grpc or the stubs, run this
    script under that one instead (once: the environment variable stops a loop)."""
    recorded = os.path.join(HERE, "gen", "PYTHON")
    if os.environ.get("DECANT_EXAMPLE_REEXEC") or not os.path.exists(recorded):
        return
    with open(recorded) as f:
        python = f.read().strip()
    if python and os.access(python, os.X_OK):
        os.environ["DECANT_EXAMPLE_REEXEC"] = "1"
        os.execv(python, [python, os.path.abspath(__file__), *sys.argv[1:]])


try:
    import grpc
except ImportError:
    run_under_generating_python()
    sys.exit(f"client.py: {sys.executable} has no grpc module; install python3-grpcio (apt) or grpcio (pip), "
             "then run examples/python/generate.sh")
try:
    from decant.v1 import store_pb2, store_pb2_grpc
except ImportError:
    run_under_generating_python()
    sys.exit("client.py: the generated stubs are missing or were made for another Python; run examples/python/generate.sh first")

CURRENT_VERSION = "decant-current-version"  # trailing metadata on FAILED_PRECONDITION


class Unexpected(Exception):
    """A result the protocol does not allow."""


def check(ok, message):
    if not ok:
        raise Unexpected(message)


def refused_version(call, request):
    """Sends a conditional write that must be refused; returns the current version the server reports."""
    try:
        response = call(request)
    except grpc.RpcError as err:
        check(err.code() == grpc.StatusCode.FAILED_PRECONDITION,
              f"expected FAILED_PRECONDITION, got {err.code().name}: {err.details()}")
        trailers = dict(err.trailing_metadata() or ())
        check(CURRENT_VERSION in trailers, f"FAILED_PRECONDITION without the {CURRENT_VERSION} trailer")
        return int(trailers[CURRENT_VERSION])
    raise Unexpected(f"the conditional write was accepted (version {response.version})")


def run(stub, ns, page_size):
    # Put: the store assigns the version.
    value = json.dumps({"plan": "pro"}).encode()
    v1 = stub.Put(store_pb2.PutRequest(namespace=ns, key="alice", value=value)).version
    check(v1 >= 1, f"put returned version {v1}")
    print(f"put alice -> version {v1}")

    # Get: value and version.
    got = stub.Get(store_pb2.GetRequest(namespace=ns, key="alice"))
    check(got.found, "get alice: not found right after the put")
    check(got.item.value == value and got.item.version == v1,
          f"get alice: got {got.item.value!r} version {got.item.version}, want {value!r} version {v1}")
    print(f"get alice -> {got.item.value.decode()} (version {got.item.version})")
    missing = stub.Get(store_pb2.GetRequest(namespace=ns, key="nobody"))
    check(not missing.found, "get nobody: found a key that was never written")
    print("get nobody -> not found")

    # Conditional put with a stale version: refused, and the server says what is current.
    stale = v1 + 100
    current = refused_version(stub.Put, store_pb2.PutRequest(
        namespace=ns, key="alice", value=b"lost update",
        condition=store_pb2.Condition(expected_version=stale)))
    check(current == v1, f"refused put reports current version {current}, want {v1}")
    print(f"conditional put alice if version {stale} -> FAILED_PRECONDITION (current version {current})")

    # Retry with the version the server reported: accepted.
    value2 = json.dumps({"plan": "team"}).encode()
    v2 = stub.Put(store_pb2.PutRequest(namespace=ns, key="alice", value=value2,
                                       condition=store_pb2.Condition(expected_version=current))).version
    check(v2 > v1, f"conditional put returned version {v2}, not above {v1}")
    print(f"conditional put alice if version {current} -> version {v2}")

    # Create-only on a key that exists: refused.
    current = refused_version(stub.Put, store_pb2.PutRequest(
        namespace=ns, key="alice", value=b"again",
        condition=store_pb2.Condition(must_not_exist=True)))
    check(current == v2, f"refused create reports current version {current}, want {v2}")
    print(f"create alice if absent -> FAILED_PRECONDITION (current version {current})")

    # Scan with pagination: write 12 keys, then page through them.
    keys = [f"user-{i:02d}" for i in range(12)]
    for k in keys:
        stub.Put(store_pb2.PutRequest(namespace=ns, key=k, value=f"value of {k}".encode()))
    print(f"put {len(keys)} keys {keys[0]} .. {keys[-1]}")
    seen, token, pages = [], "", 0
    while True:
        page = stub.Scan(store_pb2.ScanRequest(namespace=ns, prefix="user-", page_size=page_size, page_token=token))
        pages += 1
        check(len(page.items) <= page_size, f"scan page {pages} has {len(page.items)} items, more than {page_size}")
        for item in page.items:
            check(item.value == f"value of {item.key}".encode(), f"scan: {item.key} has value {item.value!r}")
        seen.extend(item.key for item in page.items)
        token = page.next_page_token
        print(f"scan page {pages}: {', '.join(i.key for i in page.items) or '(empty)'}{' (more)' if token else ' (done)'}")
        if not token:
            break
        check(pages < 100, "scan does not end")
    check(sorted(seen) == keys, f"scan returned {seen}, want each of {keys} exactly once")
    print(f"scanned {len(seen)} keys in {pages} pages")


def main():
    parser = argparse.ArgumentParser(description="Try the Decant store protocol from Python.")
    parser.add_argument("--addr", default="127.0.0.1:50051", help="the sidecar's gRPC address (default 127.0.0.1:50051)")
    parser.add_argument("--namespace", default="python_example", help="namespace to write in (default python_example)")
    parser.add_argument("--page-size", type=int, default=5, help="scan page size (default 5)")
    parser.add_argument("--connect-timeout", type=float, default=5.0, help="seconds to wait for the sidecar (default 5)")
    args = parser.parse_args()

    with grpc.insecure_channel(args.addr) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=args.connect_timeout)
        except grpc.FutureTimeoutError:
            print(f"error: cannot reach a sidecar at {args.addr} within {args.connect_timeout:g}s", file=sys.stderr)
            return 3
        print(f"connected to {args.addr}, namespace {args.namespace}")
        try:
            run(store_pb2_grpc.StoreStub(channel), args.namespace, args.page_size)
        except Unexpected as err:
            print(f"UNEXPECTED: {err}", file=sys.stderr)
            return 1
        except grpc.RpcError as err:
            print(f"UNEXPECTED: {err.code().name}: {err.details()}", file=sys.stderr)
            return 1
    print("all good")
    return 0


if __name__ == "__main__":
    sys.exit(main())
