"""A network that fails like a field network: some requests never reach the server, and some reach it but the
answer is lost on the way back (the server stored the events; the device must re-send and be told `duplicate`)."""

import random

import httpx


class FlakyTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, rng: random.Random, lost_request: float, lost_answer: float) -> None:
        self.inner = inner
        self.rng = rng
        self.lost_request = lost_request
        self.lost_answer = lost_answer
        self.failures = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.rng.random() < self.lost_request:
            self.failures += 1
            raise httpx.ConnectError("simulated: no signal", request=request)
        response = self.inner.handle_request(request)
        if self.rng.random() < self.lost_answer:
            response.read()
            response.close()
            self.failures += 1
            raise httpx.ReadError("simulated: answer lost", request=request)
        return response

    def close(self) -> None:
        self.inner.close()
