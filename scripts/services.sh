#!/usr/bin/env bash
# Installs and starts the services the tests need, idempotently, on loopback.
#
# The foundation (in-memory bus, local handler) needs no external service.
# Later issues add here: the tansu Kafka broker, OpenBao and PostgreSQL.
# Running it twice is safe; it prints what it did.
set -euo pipefail
echo "services: none required by the current test suite"
