"""cas_dvid.sync."""
