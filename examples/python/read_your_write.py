"""Read your own write: every write answers with its log position; a read given that
position as `min_position` waits (within its deadline) until the read models include
it, so the write is always in what it returns.

Usage: KEFU_TOKEN=... python3 read_your_write.py AGENT_STAFF_CODE
"""
import sys
import uuid

from kefu_example import auth, channel, with_retries

from kefu.v1 import common_pb2, customer_pb2, customer_pb2_grpc  # noqa: E402


def main(agent: str) -> int:
    customers = customer_pb2_grpc.CustomerServiceStub(channel())
    registered = with_retries(
        customers.RegisterCustomer,
        customer_pb2.RegisterCustomerRequest(
            request_id=str(uuid.uuid4()),
            name="Zhang Min",
            kind=common_pb2.CUSTOMER_KIND_INDIVIDUAL,
            tier=common_pb2.TIER_REGULAR,
            source_channel="web",
            confidentiality=common_pb2.CONFIDENTIALITY_INTERNAL,
            agent=agent,
        ),
        auth(),
    ).result
    print(f"registered {registered.id} at position {registered.position}")
    listed = customers.ListCustomers(
        customer_pb2.ListCustomersRequest(agent=agent, min_position=registered.position),
        metadata=auth(),
        timeout=10,
    )
    if registered.id not in {customer.customer_id for customer in listed.customers}:
        print("the list does not hold the customer just registered")
        return 1
    print(f"listed with min_position={registered.position}: the new customer is there")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
