"""Attaching consoles to a running engine: a versioned protocol over a unix socket.

``AttachServer`` (the engine side) serves a ``LocalClient`` to every console that
connects; ``RemoteClient`` (the console side) implements ``EngineClient`` over the
socket, so the console runs unchanged against an engine in another process.
"""
