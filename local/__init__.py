"""The local stack: moto server + the Lambda handlers in-process behind a local HTTP server."""
