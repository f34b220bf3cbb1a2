"""The core every route stands on: credentials, alert decoding and validation, filters, Pub/Sub subscriptions and
clients, the streaming engine, storage (alerts, rejected messages, heartbeats, pruning) and Targets. Nothing
here imports a route, an adapter or TOM Toolkit's broker classes."""
