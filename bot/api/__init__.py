"""The HTTP API for machine requesters (a deploy pipeline, a release job), beside
``/slack/events`` on the same aiohttp application: ask, wait for people to decide in Slack,
fetch the credential sealed to the request's own public key, and give it back when done.

``models`` (the pydantic bodies, also the OpenAPI document's schemas), ``auth`` (bearer
tokens of the policy's ``clients:``, kept hashed), ``sealing`` (libsodium sealed boxes),
``delivery`` (the notifier step that seals a client's credential instead of DMing it),
``handlers`` and ``routes`` (the route table both the app and ``/api/v1/openapi.json`` are
built from).
"""
