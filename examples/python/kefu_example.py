"""What every kefu client needs: a channel, the bearer token, and retries that are safe.

Configuration comes from the environment:
  KEFU_ADDRESS    host:port of kefu (default 127.0.0.1:50051)
  KEFU_TOKEN      the caller's bearer token
  KEFU_GENERATED  where generate.py wrote the modules (default ./generated)
"""
import os
import random
import sys
import time

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

sys.path.insert(
    0, os.environ.get("KEFU_GENERATED", os.path.join(os.path.dirname(__file__), "generated"))
)

# Worth another try: the server was going away, busy, or the call ran out of time.
# A write is safe to repeat because it carries the same request_id every time.
RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def channel() -> grpc.Channel:
    return grpc.insecure_channel(os.environ.get("KEFU_ADDRESS", "127.0.0.1:50051"))


def auth(token: str = "") -> tuple:
    """Call metadata with the bearer token (the caller's identity)."""
    return (("authorization", f"Bearer {token or os.environ['KEFU_TOKEN']}"),)


def details(error: grpc.RpcError, kind):
    """The `google.rpc` detail of type `kind` a failed call carries, or None."""
    status = rpc_status.from_call(error)
    for detail in status.details if status else []:
        if detail.Is(kind.DESCRIPTOR):
            found = kind()
            detail.Unpack(found)
            return found
    return None


def retry_delay(error: grpc.RpcError, attempt: int) -> float:
    """Seconds to wait: what the server asked for (RetryInfo), else a jittered backoff."""
    retry = details(error, error_details_pb2.RetryInfo)
    if retry is not None:
        return retry.retry_delay.ToTimedelta().total_seconds()
    return min(0.05 * 2**attempt, 2.0) * (0.5 + random.random())


def with_retries(call, request, metadata, attempts: int = 8, timeout: float = 10.0):
    """`call(request)` until it succeeds or fails for good. The request is sent
    unchanged each time: with its request_id, a repeated write is applied once and
    answered with its first result."""
    for attempt in range(attempts):
        try:
            return call(request, metadata=metadata, timeout=timeout)
        except grpc.RpcError as error:
            if error.code() not in RETRYABLE or attempt == attempts - 1:
                raise
            delay = retry_delay(error, attempt)
            print(f"  {error.code().name}: retrying in {delay:.2f} s")
            time.sleep(delay)
    raise AssertionError("unreachable")
