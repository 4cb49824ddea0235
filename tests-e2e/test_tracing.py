"""OpenTelemetry traces from a live server, received by a local OTLP/HTTP collector that decodes what arrives.

One trace follows an activity from the API call that records it (continuing the caller's W3C traceparent) through
the event bus to the Notifications consumer that turns it into a popup, and the JSON log lines written on the way
carry the same trace id beside the request id.
"""
import gzip
import json
import os
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from conftest import Herald, free_port, wait_for


class Collector:
    """A minimal OTLP/HTTP traces endpoint (POST /v1/traces, protobuf), keeping every span it receives."""

    def __init__(self):
        self.spans = []
        self.content_types = set()
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                with collector.lock:
                    collector.content_types.add(self.headers.get("Content-Type"))
                    for resource_spans in request.resource_spans:
                        resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                        for scope_spans in resource_spans.scope_spans:
                            for span in scope_spans.spans:
                                collector.spans.append({
                                    "service": resource.get("service.name"),
                                    "trace": span.trace_id.hex(),
                                    "span": span.span_id.hex(),
                                    "parent": span.parent_span_id.hex(),
                                    "name": span.name,
                                    "kind": span.kind,
                                    "attributes": {a.key: a.value for a in span.attributes},
                                    "links": [link.trace_id.hex() for link in span.links],
                                })
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def in_trace(self, trace_id):
        with self.lock:
            return [s for s in self.spans if s["trace"] == trace_id]

    def close(self):
        self.server.shutdown()


@pytest.fixture
def collector():
    c = Collector()
    yield c
    c.close()


def test_one_trace_follows_an_activity_from_the_api_to_the_popup(collector, store):
    server = Herald(database_url=store, env={
        "HERALD_BCRYPT_COST": "10",
        "HERALD_LOG_FORMAT": "json",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.port}",
        # Export every 100 ms instead of 5 s, so the test does not wait.
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }).start()
    try:
        user = server.signup()
        auth = server.auth(user["token"])
        org = requests.post(server.url("/organizations"), json={"name": "Traced"}, headers=auth).json()["id"]
        site = requests.post(server.url(f"/organizations/{org}/sites"), json={"name": "Shop", "domain": "shop.example.com"},
                             headers=auth).json()
        assert wait_for(lambda: requests.get(server.url(f"/widget/v1/{site['publicKey']}/feed")).status_code == 200)

        trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
        r = requests.post(server.url(f"/sites/{site['id']}/activities"), json={"type": "purchase", "firstName": "Ada"},
                          headers={"Authorization": f"Bearer {site['secretKey']}", "traceparent": f"00-{trace_id}-{parent_id}-01",
                                   "X-Request-Id": "trace-test-request-1"})
        assert r.status_code == 202, r.text

        def consumed():
            spans = collector.in_trace(trace_id)
            server_spans = [s for s in spans if s["kind"] == 2 and s["parent"] == parent_id]  # SPAN_KIND_SERVER
            consumer_spans = [s for s in spans if s["kind"] == 5 and s["name"] == "notifications.activities activity.captured"]
            return (server_spans, consumer_spans) if server_spans and consumer_spans else None

        found = wait_for(consumed, timeout=15)
        assert found, f"spans of the trace: {collector.in_trace(trace_id)}; all: {[(s['name'], s['trace']) for s in collector.spans][-20:]}"
        server_spans, consumer_spans = found
        request_span = server_spans[0]
        assert request_span["service"] == "herald"
        assert request_span["attributes"]["http.route"].string_value == "/sites/{siteId}/activities"
        # The consumer's span descends from the request's: the event carried the trace across the bus.
        ids = {s["span"] for s in collector.in_trace(trace_id)}
        assert consumer_spans[0]["parent"] in ids
        assert consumer_spans[0]["attributes"]["messaging.consumer.group.name"].string_value == "notifications.activities"
        assert collector.content_types == {"application/x-protobuf"}

        # A request without a traceparent starts a trace of its own.
        assert requests.get(server.url(f"/widget/v1/{site['publicKey']}/feed")).status_code == 200
        assert wait_for(lambda: [s for s in collector.spans if s["kind"] == 2 and s["parent"] == ""
                                 and s["attributes"].get("http.route", None) is not None
                                 and s["attributes"]["http.route"].string_value == "/widget/v1/{publicKey}/feed"], timeout=10)

        # JSON log lines written inside the request carry its trace id and request id.
        def traced_lines():
            lines = []
            for line in server.output().splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("trace_id") == trace_id:
                    lines.append(record)
            return lines

        lines = wait_for(traced_lines, timeout=5)
        assert lines, server.output()[-3000:]
        assert any(l.get("request_id") == "trace-test-request-1" and l.get("msg") == "request" for l in lines), lines
        assert all(len(l.get("span_id", "")) == 16 for l in lines)
    finally:
        server.stop()


def test_tracing_is_off_without_an_endpoint(collector):
    server = Herald(env={"HERALD_BCRYPT_COST": "10", "HERALD_LOG_FORMAT": "json"}).start()
    try:
        trace_id = secrets.token_hex(16)
        r = requests.get(server.url("/healthz"), headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
        assert r.status_code == 200
        assert trace_id not in server.output()
        assert collector.spans == []
    finally:
        server.stop()
