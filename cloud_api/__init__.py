"""The cloud service: enrolment, idempotent ingest, fleet status and signed downlink documents."""
