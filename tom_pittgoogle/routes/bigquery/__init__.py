"""The pieces of the BigQuery route, each with one job; :mod:`tom_pittgoogle.routes.database_python` joins them.

- :mod:`.tables`: which tables a search reads and what columns each has (cached);
- :mod:`.sql`: the SQL and query parameters of one table for a selection (pure: no BigQuery call);
- :mod:`.cost`: the cost guard (dry-run estimate against ``PITTGOOGLE_BIGQUERY_MAX_BYTES``);
- :mod:`.rows`: result rows read as alerts and the tables' alerts merged;
- :mod:`.errors`: BigQuery's and google-auth's errors said in the app's terms.
"""
