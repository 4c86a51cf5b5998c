"""cas_dvid.api."""
