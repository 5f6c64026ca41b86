"""``engine serve``: the HTTP side of the engine, over the same ``engine`` functions the
CLI calls (direction: ``cli -> engine.server -> engine -> store``; nothing here speaks SQL).

One module per concept: ``keys`` (API tokens and webhook keys, no HTTP), ``auth``
(bearer tokens, login links, session cookies, CSRF), ``http`` (JSON bodies and errors),
``api`` (the JSON API), ``sse`` (live event streams), ``webhooks``, ``openapi`` (the
document describing every route), ``app`` (the app factory) and ``run`` (uvicorn, the
embedded worker and a clean shutdown). Only ``keys`` is imported by the CLI outside
``engine serve``, so the other commands load no web framework.
"""
