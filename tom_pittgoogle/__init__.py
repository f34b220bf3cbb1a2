"""Pitt-Google alert broker for TOM Toolkit.

Three routes into a TOM, each a ``GenericBroker`` backed by a Consumer:

- ``broker_stream_rest.BrokerStreamRest``: Pub/Sub REST API, batch pulls;
- ``broker_stream_python.BrokerStreamPython``: google-cloud-pubsub streaming pull;
- ``broker_database_python.BrokerDatabasePython``: BigQuery, parameterized SQL.
"""

__version__ = "0.2.0"
