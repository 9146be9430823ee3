"""Follow kefu's event feed and resume where you left off.

A follower keeps the position of the last event it handled (durably, in real life)
and, after any interruption (its own restart, a dropped connection, a server going
away with UNAVAILABLE), subscribes again from that position + 1: no event is missed
and none is seen twice.

Usage: KEFU_TOKEN=<a service token> python3 follow_feed.py EVENTS
"""
import sys
import time

import grpc
from kefu_example import RETRYABLE, auth, channel, retry_delay

from kefu.v1 import event_pb2, event_pb2_grpc  # noqa: E402


def follow(events, start: int, count: int, seen: list) -> int:
    """Handles `count` events from position `start`, resuming after interruptions;
    returns the next position to ask for."""
    next_position = start
    attempt = 0
    while count > 0:
        stream = events.Subscribe(
            event_pb2.SubscribeRequest(from_position=next_position), metadata=auth()
        )
        try:
            for response in stream:
                event = response.event
                seen.append(event.position)
                print(f"  {event.position}: {event.event_type} on {event.stream_id}")
                next_position = event.position + 1
                count -= 1
                attempt = 0
                if count == 0:
                    stream.cancel()  # done for now; we know where to resume
                    break
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.CANCELLED and count == 0:
                break
            if error.code() not in RETRYABLE:
                raise
            time.sleep(retry_delay(error, attempt))  # e.g. "server shutting down"
            attempt += 1
    return next_position


def main(total: int) -> int:
    events = event_pb2_grpc.EventServiceStub(channel())
    seen: list = []
    print("following from the start:")
    resume_at = follow(events, 1, total // 2, seen)
    print(f"interrupted; resuming from position {resume_at}:")
    follow(events, resume_at, total - total // 2, seen)
    if seen != list(range(1, total + 1)):
        print(f"events missed or repeated: {seen}")
        return 1
    print(f"{total} events, each exactly once, in order")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
