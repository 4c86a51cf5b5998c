"""cas_dvid.backends."""
