"""cas_dvid.testing."""
