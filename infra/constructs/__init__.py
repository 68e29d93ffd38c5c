"""One construct per concern of the ingest path; infra.stack composes them."""
