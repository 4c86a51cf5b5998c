"""cas_dvid.datatypes."""
