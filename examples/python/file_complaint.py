"""File a complaint with an idempotent retry loop.

The request_id is chosen once, before the first try, and sent with every retry: if a
reply is lost (a timeout, a dropped connection), retrying cannot file the complaint
twice; kefu answers the repeat with the first result.

Usage: KEFU_TOKEN=... python3 file_complaint.py CUSTOMER_ID
"""
import sys
import uuid

from kefu_example import auth, channel, with_retries

from kefu.v1 import complaint_pb2, complaint_pb2_grpc, common_pb2  # noqa: E402


def main(customer_id: str) -> int:
    complaints = complaint_pb2_grpc.ComplaintServiceStub(channel())
    request = complaint_pb2.FileComplaintRequest(
        request_id=str(uuid.uuid4()),  # once per complaint, never per try
        customer_id=customer_id,
        category="billing",
        cause="double_charge",
        severity=common_pb2.SEVERITY_NORMAL,
        channel=common_pb2.INTAKE_CHANNEL_PHONE,
        description="charged twice for one order",
    )
    filed = with_retries(complaints.FileComplaint, request, auth())
    print(f"filed case {filed.case_number} (id {filed.result.id}, position {filed.result.position})")
    # As if the reply had been lost: the same request again changes nothing.
    again = with_retries(complaints.FileComplaint, request, auth())
    if (again.case_number, again.result.id) != (filed.case_number, filed.result.id):
        print(f"a retry filed another case: {again.case_number}")
        return 1
    print(f"retried: the same case {again.case_number}, nothing filed twice")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
