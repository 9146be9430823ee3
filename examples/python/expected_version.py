"""Optimistic concurrency: change a customer only if nobody changed it since we read it.

Read the customer and its version, decide, and send the change with
`expected_version`. If someone else wrote in between, kefu refuses with ABORTED
(ErrorInfo reason WRONG_EXPECTED_VERSION, with the actual version): read again,
decide again on what is there now, and send with the new version.

Usage: KEFU_TOKEN=... python3 expected_version.py CUSTOMER_ID
"""
import sys
import uuid

import grpc
from google.rpc import error_details_pb2
from kefu_example import auth, channel, details

from kefu.v1 import common_pb2, customer_pb2, customer_pb2_grpc  # noqa: E402


def grade(customers, customer_id: str, stars: int, version: int) -> None:
    customers.GradeCustomer(
        customer_pb2.GradeCustomerRequest(
            request_id=str(uuid.uuid4()),
            customer_id=customer_id,
            expected_version=version,
            tier=common_pb2.TIER_REGULAR,
            stars=stars,
            reason="graded after the annual review",
        ),
        metadata=auth(),
        timeout=10,
    )


def main(customer_id: str) -> int:
    customers = customer_pb2_grpc.CustomerServiceStub(channel())
    read = lambda: customers.GetCustomer(  # noqa: E731
        customer_pb2.GetCustomerRequest(customer_id=customer_id), metadata=auth(), timeout=10
    ).customer
    seen = read()
    print(f"read the customer at version {seen.version} ({seen.stars} stars)")
    # Someone else grades the customer meanwhile (here: us, from another "client").
    grade(customers, customer_id, 3, seen.version)
    conflicts = 0
    for _ in range(5):
        try:
            grade(customers, customer_id, min(seen.stars + 1, 5), seen.version)
            print(f"graded at version {seen.version} after {conflicts} conflict(s)")
            return 0 if conflicts == 1 else 1
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.ABORTED:
                raise
            info = details(error, error_details_pb2.ErrorInfo)
            actual = info.metadata.get("actual_version") if info else "?"
            print(f"ABORTED ({info.reason if info else ''}): the customer is at version {actual}")
            conflicts += 1
            seen = read()  # decide again on what is there now
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
