"""Proxies in front of the real emulators that forward every call until told to refuse, and then answer as Google
answers a caller without the permission: HTTP 403 ``PERMISSION_DENIED`` (REST, BigQuery) or gRPC status
``PERMISSION_DENIED`` (the Python client's Pub/Sub calls, the streaming pull included). The emulators enforce no
IAM; these are the edge-case doubles in front of them."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import requests

DENIED_MESSAGE = "User not authorized to perform this action."


class ForwardingHTTPProxy:
    """Forwards HTTP to ``upstream`` (``http://host:port``) unless :meth:`intercept` answers instead."""

    def __init__(self, upstream: str) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = proxy.intercept(self.command, self.path, self.headers)
                if answer is not None:
                    status, error = answer
                    self._answer(status, json.dumps({"error": error}).encode(), "application/json")
                    return
                headers = {name: value for name, value in self.headers.items()
                           if name.lower() in ("content-type", "accept", "content-encoding")}
                response = requests.request(self.command, upstream + self.path, data=body or None, headers=headers,
                                            timeout=60)
                self._answer(response.status_code, response.content, response.headers.get("Content-Type"))

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward  # noqa: N815

            def _answer(self, status, data, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type or "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self._server.server_port}"
        self.url = f"http://{self.host}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def intercept(self, command: str, path: str, headers) -> tuple[int, dict] | None:
        """``(status, error body)`` to answer instead of forwarding, or None to forward."""
        return None

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class RefusingHTTPProxy(ForwardingHTTPProxy):
    """Forwards HTTP to ``upstream``; with :attr:`refusing` set, answers 403 PERMISSION_DENIED as Google does."""

    def __init__(self, upstream: str) -> None:
        self.refusing = False
        self.refused: list[str] = []
        super().__init__(upstream)

    def intercept(self, command: str, path: str, headers) -> tuple[int, dict] | None:
        if not self.refusing:
            return None
        self.refused.append(f"{command} {path}")
        return 403, {"code": 403, "message": DENIED_MESSAGE, "status": "PERMISSION_DENIED",
                     "errors": [{"reason": "accessDenied", "message": DENIED_MESSAGE}]}


_UNLIMITED = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]


class RefusingGrpcProxy:
    """Forwards every gRPC call (bytes in, bytes out) to ``upstream`` (``host:port``); :meth:`refuse` makes new
    calls and the open streaming pulls end with ``PERMISSION_DENIED``."""

    def __init__(self, upstream: str) -> None:
        self.refusing = False
        self.refused: list[str] = []
        self._channel = grpc.insecure_channel(upstream, options=_UNLIMITED)
        self._open: set = set()
        self._lock = threading.Lock()
        proxy = self

        def deny(method: str, context) -> None:
            proxy.refused.append(method)
            context.abort(grpc.StatusCode.PERMISSION_DENIED, DENIED_MESSAGE)

        class Handler(grpc.GenericRpcHandler):
            def service(self, details):
                method = details.method
                metadata = [(key, value) for key, value in details.invocation_metadata
                            if key in ("x-goog-request-params",)]
                if method.endswith("/StreamingPull"):
                    def stream(requests_in, context):
                        if proxy.refusing:
                            deny(method, context)
                        call = proxy._channel.stream_stream(method)(requests_in, metadata=metadata)
                        with proxy._lock:
                            proxy._open.add(call)
                        try:
                            yield from call
                        except grpc.RpcError as error:
                            if proxy.refusing:
                                deny(method, context)
                            context.abort(error.code(), error.details() or "")
                        finally:
                            with proxy._lock:
                                proxy._open.discard(call)
                    return grpc.stream_stream_rpc_method_handler(stream)

                def unary(request, context):
                    if proxy.refusing:
                        deny(method, context)
                    try:
                        return proxy._channel.unary_unary(method)(request, metadata=metadata, timeout=60)
                    except grpc.RpcError as error:
                        context.abort(error.code(), error.details() or "")
                return grpc.unary_unary_rpc_method_handler(unary)

        self._server = grpc.server(ThreadPoolExecutor(max_workers=32), handlers=[Handler()], options=_UNLIMITED)
        port = self._server.add_insecure_port("127.0.0.1:0")
        self.host = f"127.0.0.1:{port}"
        self._server.start()

    def refuse(self) -> None:
        """From now on refuse every call, and end the open streaming pulls with PERMISSION_DENIED."""
        self.refusing = True
        with self._lock:
            for call in list(self._open):
                call.cancel()

    def stop(self) -> None:
        self._server.stop(grace=None)
        self._channel.close()
