"""cas_dvid: a content-addressed, versioned datastore that speaks DVID's HTTP API."""

__version__ = "0.1.0"
