"""moto's SQS loses deletes made at the same time: evidence for the note in queue_flow.rs.

Fills a fresh queue, receives every message with ONE consumer (no concurrent receives), then
deletes them from THREADS threads, 10 receipt handles per DeleteMessageBatch, checking every entry,
and prints how many messages are left. With one thread none are; with several, some stay in
flight although every delete entry was answered Successful.

The cause (moto 5.2.5, moto/sqs/models.py, Queue.delete_message): it builds a new `_messages`
list without the message and assigns it back, with no lock, and the server runs each request on a
thread of its own. Two deletes that interleave write back a list that still holds the other's
message; its receipt handles are already in `deleted_messages`, so deleting it again is a no-op.

    # against the running moto server (scripts/services start; its exports)
    .local/venv/bin/python tests/moto_sqs_delete_race.py 4
    # against a moto server in this process whose threads switch every 0.1 ms: the same race, met
    # in every run instead of now and then
    .local/venv/bin/python tests/moto_sqs_delete_race.py 4 --switch-interval 0.0001
"""

import argparse
import logging
import os
import sys
import threading

import boto3

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("threads", type=int, help="threads deleting at once")
parser.add_argument("--messages", type=int, default=1000)
parser.add_argument("--switch-interval", type=float, help="run moto in this process, with this sys.setswitchinterval")
args = parser.parse_args()

if args.switch_interval:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    sys.setswitchinterval(args.switch_interval)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
else:
    endpoint = os.environ.get("AUDITSTREAM_TEST_MOTO_ENDPOINT") or sys.exit(
        "AUDITSTREAM_TEST_MOTO_ENDPOINT is not set: run scripts/services start and eval its exports, or pass --switch-interval"
    )


def client():
    return boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


sqs = client()
url = sqs.create_queue(QueueName=f"delete-race-{os.getpid()}", Attributes={"VisibilityTimeout": "120"})["QueueUrl"]
for start in range(0, args.messages, 10):
    entries = [{"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(min(10, args.messages - start))]
    assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")

handles = []
while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", []):
    handles += [m["ReceiptHandle"] for m in batch]

lock = threading.Lock()
successful, failed = [0], []


def delete(mine):
    own = client()
    for i in range(0, len(mine), 10):
        out = own.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(j), "ReceiptHandle": h} for j, h in enumerate(mine[i : i + 10])])
        with lock:
            successful[0] += len(out.get("Successful", []))
            failed.extend(out.get("Failed", []))


threads = [threading.Thread(target=delete, args=(handles[k :: args.threads],)) for k in range(args.threads)]
for t in threads:
    t.start()
for t in threads:
    t.join()

left = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
print(
    f"{args.threads} threads: sent {args.messages}, received {len(handles)}, delete entries Successful {successful[0]}, Failed {len(failed)}; "
    f"left visible {left['ApproximateNumberOfMessages']}, left in flight {left['ApproximateNumberOfMessagesNotVisible']}"
)
sqs.delete_queue(QueueUrl=url)
