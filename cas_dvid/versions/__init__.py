"""cas_dvid.versions."""
