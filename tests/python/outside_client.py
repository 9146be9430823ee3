"""An outside client (Python grpcio) against a running kefu: lists the services through
server reflection, checks health, and expects UNAUTHENTICATED without a token.

Usage: python3 outside_client.py HOST:PORT
"""
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

EXPECTED = {
    "kefu.v1.CustomerService",
    "kefu.v1.StaffService",
    "kefu.v1.ComplaintService",
    "kefu.v1.CallbackService",
    "kefu.v1.ReportingService",
    "kefu.v1.EventService",
    "kefu.v1.AuditService",
    "grpc.health.v1.Health",
}


def main(address: str) -> int:
    channel = grpc.insecure_channel(address)
    grpc.channel_ready_future(channel).result(timeout=10)

    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    services = {
        service.name
        for response in reflection.ServerReflectionInfo(iter([request]), timeout=10)
        for service in response.list_services_response.service
    }
    missing = EXPECTED - services
    if missing:
        print(f"reflection lists {sorted(services)}, missing {sorted(missing)}")
        return 1

    health = health_pb2_grpc.HealthStub(channel)
    for name in ["", "kefu.v1.ComplaintService"]:
        status = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10).status
        if status != health_pb2.HealthCheckResponse.SERVING:
            print(f"health of {name!r} is {status}")
            return 1

    # A kefu call without a token: the empty message is a valid ListComplaintsRequest.
    call = channel.unary_unary(
        "/kefu.v1.ComplaintService/ListComplaints",
        request_serializer=lambda message: message,
        response_deserializer=lambda message: message,
    )
    try:
        call(b"", timeout=10)
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.UNAUTHENTICATED:
            print(f"expected UNAUTHENTICATED, got {error.code()}")
            return 1
    else:
        print("a call without a token was answered")
        return 1
    print(f"outside client: {len(services)} services listed, SERVING, UNAUTHENTICATED without a token")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
