"""TOM Toolkit adapters: the brokers and their forms, the DataService, the alert stream. Thin layers over
:mod:`tom_pittgoogle.routes`."""
