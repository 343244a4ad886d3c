"""Dialects: the formats clients speak, translated to and from the internal one.

The internal form is OpenAI's chat form: a chat request body, a chat answer, a
stream of chat chunks. A dialect is pure functions and small classes that turn a
client's request into that form and the internal answer or stream back into the
client's; no I/O, no clock, no services. A streamed answer is written through a
framing (the `Framing` protocol of `gateway.proxy.streaming`): fed one chunk at a
time, it returns the bytes to send, then the last bytes once the charge is known.

Dialect modules import no handler, stage or I/O layer: not `gateway.api`,
`gateway.services`, `gateway.ops` nor `gateway.proxy` (an import contract in
pyproject.toml checks it). A dialect that grows
is split into modules named for what they hold: `<dialect>_request.py` (inbound),
`<dialect>.py` (the answer and the mappings it shares), `<dialect>_stream.py`.
"""
