"""The operators' web console: its HTTP + WebSocket API (:mod:`content.console.server`,
:mod:`content.console.websocket`), the security around it (:mod:`content.console.security`), its
OpenAPI description (:mod:`content.console.openapi`) and the service that serves it from the running
exhibit's own event loop (:mod:`content.console.service`). The page itself is in ``static/``."""
