#!/usr/bin/env python3
"""The reference peer of scripts/bench: the audit-log forwarder one would write in Python, measured in the
same run as auditstream so that the two compare on one machine.

For each line of an NDJSON file, sequentially: json.loads; every step line whose mask_data is true gets
its input and output replaced by {"data": "masked"}; json.dumps; then one HTTP POST with requests (one
Session, so connections are reused), one S3 PutObject with boto3 (one client) or one Put Blob with
azure-storage-blob (one container client; create-only, as auditstream writes). Any failed request
stops the run with an error: a peer that drops events would measure less work than it claims.

usage: peer.py EVENTS.ndjson --to http://HOST:PORT/PATH
       peer.py EVENTS.ndjson --to s3://BUCKET[/PREFIX]   (endpoint from AWS_ENDPOINT_URL, keys from the
                                                         usual AWS_* variables)
       peer.py EVENTS.ndjson --to azure-blob://CONTAINER[/PREFIX]   (account from
                                                         AZURE_STORAGE_CONNECTION_STRING)
"""
import argparse
import json
import os
import sys

MASKED = {"data": "masked"}


def mask(event):
    lines = event.get("lines") if isinstance(event, dict) else None
    for line in lines if isinstance(lines, list) else []:
        if isinstance(line, dict) and line.get("mask_data"):
            line["input"] = MASKED
            line["output"] = MASKED
    return event


def http_sender(url):
    import requests

    session = requests.Session()

    def send(_number, body):
        response = session.post(url, data=body.encode(), headers={"Content-Type": "application/json"})
        response.raise_for_status()

    return send


def s3_sender(target):
    import boto3

    bucket, _, prefix = target.partition("/")
    client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))

    def send(number, body):
        client.put_object(Bucket=bucket, Key=f"{prefix}{number:08d}.json", Body=body.encode(), ContentType="application/json")

    return send


def azure_blob_sender(target):
    from azure.storage.blob import BlobServiceClient, ContentSettings

    container, _, prefix = target.partition("/")
    service = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])
    client = service.get_container_client(container)
    content = ContentSettings(content_type="application/json")

    def send(number, body):
        # overwrite=False sends If-None-Match: *, as auditstream's create-only Put Blob does.
        client.upload_blob(f"{prefix}{number:08d}.json", body.encode(), overwrite=False, content_settings=content)

    return send


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("events", help="NDJSON file, one audit event per line")
    parser.add_argument("--to", required=True, help="http://…, s3://BUCKET[/PREFIX] or azure-blob://CONTAINER[/PREFIX]")
    args = parser.parse_args()
    if args.to.startswith("s3://"):
        send = s3_sender(args.to[len("s3://"):])
    elif args.to.startswith("azure-blob://"):
        send = azure_blob_sender(args.to[len("azure-blob://"):])
    elif args.to.startswith(("http://", "https://")):
        send = http_sender(args.to)
    else:
        parser.error(f"--to {args.to!r}: expected http://…, s3://BUCKET[/PREFIX] or azure-blob://CONTAINER[/PREFIX]")
    sent = 0
    with open(args.events, "rb") as events:
        for number, line in enumerate(events, 1):
            if not line.strip():
                continue
            send(number, json.dumps(mask(json.loads(line))))
            sent += 1
    print(f"{sent} events sent to {args.to}")


if __name__ == "__main__":
    sys.exit(main())
