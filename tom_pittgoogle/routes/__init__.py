"""The routes in: the three Consumers (Pub/Sub REST, Pub/Sub streaming pull, BigQuery), each owning its connection,
and the TOM's own stored alerts. They stand on :mod:`tom_pittgoogle.core`."""
